"""Reward-model evaluation: metrics over preference pairs, reports (JSON, Markdown, PNG).

Metrics, for rewards ``c`` (chosen) and ``r`` (rejected) of N pairs:

* ``accuracy``: win rate, ``mean(c > r)`` with ties counted as half a win;
* ``kendall_tau``: Kendall's tau between the model's pairwise order and the labels,
  ``(concordant - discordant) / N`` over the N labelled pairs (ties count 0), which is
  ``2 * accuracy - 1`` when there are no ties;
* ``margin_kendall_tau``: Kendall's tau-b between predicted margins ``c - r`` and the
  data's margins, when the data carries distinct margins;
* ``chosen_*`` / ``rejected_*``: mean, std (population), min, max of the rewards;
* ``margin_mean`` / ``margin_std``: of ``c - r``;
* ``length_correlation``: Pearson correlation between reward and response length (tokens)
  over all 2N responses - a high value warns of a length-biased reward model.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or float(np.std(x)) == 0.0 or float(np.std(y)) == 0.0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b by direct pair counting (O(n^2); margins sets are small enough)."""
    n = len(x)
    if n < 2:
        return float("nan")
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(n, k=1)
    sx, sy = dx[upper], dy[upper]
    num = float((sx * sy).sum())
    den = math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    return num / den if den else float("nan")


def reward_metrics(
    chosen: Any, rejected: Any, lengths: Any | None = None, margins: Any | None = None
) -> dict[str, float]:
    """All metrics of the module docstring (``lengths``: (N, 2) chosen/rejected token counts)."""
    c = np.asarray(chosen, dtype=np.float64).reshape(-1)
    r = np.asarray(rejected, dtype=np.float64).reshape(-1)
    if c.shape != r.shape or c.size == 0:
        raise ValueError(f"need as many chosen as rejected rewards (got {c.size} and {r.size})")
    diff = c - r
    wins = (diff > 0).astype(np.float64) + 0.5 * (diff == 0)
    out: dict[str, float] = {
        "pairs": float(c.size),
        "accuracy": float(wins.mean()),
        "kendall_tau": float((np.sign(diff)).mean()),
        "margin_mean": float(diff.mean()),
        "margin_std": float(diff.std()),
    }
    for name, values in (("chosen", c), ("rejected", r)):
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_std"] = float(values.std())
        out[f"{name}_min"] = float(values.min())
        out[f"{name}_max"] = float(values.max())
    if lengths is not None:
        lens = np.asarray(lengths, dtype=np.float64).reshape(-1, 2)
        out["length_correlation"] = _pearson(np.concatenate([c, r]), np.concatenate([lens[:, 0], lens[:, 1]]))
    if margins is not None:
        m = np.asarray(margins, dtype=np.float64).reshape(-1)
        if len(np.unique(m)) > 1:
            out["margin_kendall_tau"] = _kendall_tau_b(diff, m)
    return out


def compute_metrics_fn(eval_pred: Any) -> dict[str, float]:
    """``Trainer.compute_metrics``: predictions ``(N, 2)`` rewards, label_ids ``(N, 3)`` margin + lengths."""
    preds = np.asarray(eval_pred.predictions)
    labels = np.asarray(eval_pred.label_ids)
    metrics = reward_metrics(preds[:, 0], preds[:, 1], lengths=labels[:, 1:3], margins=labels[:, 0])
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def score_dataset(
    model: Any, dataset: Any, batch_size: int = 16, device: str | None = None
) -> dict[str, np.ndarray]:
    """Rewards for every pair of a :class:`PreferencePairDataset` (chosen and rejected in one forward)."""
    import torch

    from rerankctl.data.preference_dataset import PreferenceCollator

    pad_id = model.tokenizer.pad_token_id if model.tokenizer is not None else 0
    collate = PreferenceCollator(pad_id or 0)
    device = device or str(next(model.parameters()).device)
    model.to(device).eval()
    chosen, rejected, lengths, margins = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]]).to(device)
            mask = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]]).to(device)
            rewards = model(input_ids=ids, attention_mask=mask)["rewards"].float().cpu()
            n = batch["margin"].shape[0]
            chosen.append(rewards[:n].numpy())
            rejected.append(rewards[n:].numpy())
            lengths.append(batch["lengths"].numpy())
            margins.append(batch["margin"].numpy())
    return {
        "chosen": np.concatenate(chosen),
        "rejected": np.concatenate(rejected),
        "lengths": np.concatenate(lengths),
        "margins": np.concatenate(margins),
    }


def _atomic_write(path: Path, data: bytes) -> None:
    from rerankctl.atomic import write_file

    write_file(path, data)


def markdown_report(metrics: dict[str, float], title: str = "Reward model evaluation") -> str:
    """A small Markdown table of the metrics."""
    rows = [f"# {title}", "", "| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        text = f"{value:.4f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
        rows.append(f"| {key} | {text} |")
    return "\n".join(rows) + "\n"


def write_histogram(path: Path, chosen: np.ndarray, rejected: np.ndarray) -> Path | None:
    """A PNG histogram of chosen vs rejected rewards; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.histogram_bin_edges(np.concatenate([chosen, rejected]), bins=30)
    ax.hist(chosen, bins=bins, alpha=0.6, label="chosen")
    ax.hist(rejected, bins=bins, alpha=0.6, label="rejected")
    ax.set_xlabel("reward")
    ax.set_ylabel("pairs")
    ax.legend()
    fig.tight_layout()
    from rerankctl.atomic import temp_file

    fd, tmp = temp_file(path, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path


def write_reports(
    output_dir: str | os.PathLike,
    metrics: dict[str, float],
    scores: dict[str, np.ndarray] | None = None,
    *,
    stem: str = "evaluation_report",
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and (with matplotlib) ``<stem>_hist.png``; returns their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    payload = {"metrics": clean, **(extra or {})}
    paths = {"json": output_dir / f"{stem}.json", "markdown": output_dir / f"{stem}.md"}
    _atomic_write(paths["json"], (json.dumps(payload, indent=2) + "\n").encode())
    _atomic_write(paths["markdown"], markdown_report(metrics).encode())
    if scores is not None:
        png = write_histogram(output_dir / f"{stem}_hist.png", scores["chosen"], scores["rejected"])
        if png is not None:
            paths["histogram"] = png
    return paths
