"""Evaluation reports: JSON, a Markdown table (datasets x models), an optional PNG bar chart,
and rows in the run store's ``evals`` table.

Every result kind (`TaskScore` from mteb, `LocalResult` from a local file, `TwoStageResult`)
becomes a `ResultRow`; the table shows each dataset's main score per model, and for every model
after the first its difference from the first model (the baseline), so a checkpoint comparison
reads at a glance. Files are written atomically (a temp file, then ``os.replace``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rerankctl.errors import DependencyError

# Metrics copied to the run store besides the main score (when a result has them).
STORE_METRICS = (
    "map_at_1000", "mrr_at_10", "ndcg_at_1", "ndcg_at_5", "ndcg_at_10", "recall_at_10", "precision_at_1",
    "mrr", "map", "ndcg@1", "ndcg@5", "ndcg@10", "p@1", "p@5", "r@5", "r@10",
)  # fmt: skip


@dataclass
class ResultRow:
    """One (model, dataset) result, whatever produced it."""

    model: str
    dataset: str
    main_metric: str
    main_score: float
    metrics: dict[str, float] = field(default_factory=dict)
    kind: str = "mteb"
    extra: dict[str, Any] = field(default_factory=dict)


def to_row(result: Any, model: str | None = None) -> ResultRow:
    """A `ResultRow` from a `TaskScore`, `LocalResult`, `TwoStageResult` or `ResultRow`."""
    if isinstance(result, ResultRow):
        return result
    name = model or result.model
    if hasattr(result, "first_stage"):  # TwoStageResult
        return ResultRow(
            model=name,
            dataset=f"{result.task} (top-{result.top_k})",
            main_metric=result.main_metric,
            main_score=result.main_score,
            metrics=dict(result.reranked),
            kind="two_stage",
            extra={
                "embedder": result.embedder,
                "first_stage_main_score": result.first_stage.get(result.main_metric),
                "gain": result.gain,
                "n_queries": result.n_queries,
            },
        )
    if hasattr(result, "skipped_no_positive"):  # LocalResult
        return ResultRow(
            model=name,
            dataset=result.dataset,
            main_metric=result.main_metric,
            main_score=result.main_score,
            metrics=dict(result.metrics),
            kind="local",
            extra={
                "n_queries": result.n_queries,
                "n_pairs": result.n_pairs,
                "seconds": round(result.seconds, 3),
                # the main metric per query, in file order: what a paired comparison needs
                **(
                    {"per_query": [q[result.main_metric] for q in result.per_query]}
                    if result.per_query
                    else {}
                ),
            },
        )
    return ResultRow(
        model=name,
        dataset=result.task,
        main_metric=result.main_metric,
        main_score=result.main_score,
        metrics=dict(result.metrics),
        kind="mteb",
        extra={"n_queries": result.n_queries, "n_pairs": result.n_pairs, "seconds": round(result.seconds, 3)},
    )


def _order(rows: Sequence[ResultRow], models: Sequence[str] | None) -> tuple[list[str], list[str]]:
    model_order = list(models) if models else []
    datasets: list[str] = []
    for row in rows:
        if row.model not in model_order:
            model_order.append(row.model)
        if row.dataset not in datasets:
            datasets.append(row.dataset)
    return model_order, datasets


def markdown_table(rows: Sequence[ResultRow], models: Sequence[str] | None = None, digits: int = 4) -> str:
    """Datasets x models of main scores; later models show ``(+d)`` against the first model.

    The last line averages each model over the datasets every model has a score for.
    """
    models, datasets = _order(rows, models)
    cell = {(r.model, r.dataset): r for r in rows}
    head = ["Dataset", "Metric"] + [f"{m}" for m in models]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(model: str, value: float | None, base: float | None, first: bool) -> str:
        if value is None:
            return "—"
        text = f"{value:.{digits}f}"
        if not first and base is not None:
            text += f" ({value - base:+.{digits}f})"
        return text

    for ds in datasets:
        metric = next(r.main_metric for r in rows if r.dataset == ds)
        base_row = cell.get((models[0], ds))
        base = base_row.main_score if base_row else None
        vals = [
            fmt(m, cell[(m, ds)].main_score if (m, ds) in cell else None, base, i == 0)
            for i, m in enumerate(models)
        ]
        lines.append("| " + " | ".join([ds, metric] + vals) + " |")
    common = [ds for ds in datasets if all((m, ds) in cell for m in models)]
    if len(common) > 1:
        means = [sum(cell[(m, ds)].main_score for ds in common) / len(common) for m in models]
        vals = [fmt(m, v, means[0], i == 0) for i, (m, v) in enumerate(zip(models, means, strict=True))]
        lines.append("| " + " | ".join([f"**Average** ({len(common)})", "main"] + vals) + " |")
    return "\n".join(lines) + "\n"


def report_dict(
    rows: Sequence[ResultRow], models: Sequence[str] | None = None, **meta: Any
) -> dict[str, Any]:
    """The JSON report: metadata, models, and one entry per (model, dataset)."""
    models, datasets = _order(rows, models)
    return {"meta": meta, "models": models, "datasets": datasets, "results": [asdict(r) for r in rows]}


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    return _atomic_write(Path(path), text.encode("utf-8"))


def _atomic_write(path: Path, data: bytes) -> Path:
    from rerankctl.atomic import write_file

    return write_file(path, data)


def plot_bars(path: str | Path, rows: Sequence[ResultRow], models: Sequence[str] | None = None) -> Path:
    """A grouped bar chart of main scores (datasets on x, one bar per model), as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyError(
            "--plot needs matplotlib, which is not installed", hint="pip install 'rerankctl[plot]'"
        ) from None
    import io

    models, datasets = _order(rows, models)
    cell = {(r.model, r.dataset): r.main_score for r in rows}
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(datasets) * max(len(models), 1) * 0.6 + 2), 4))
    for i, model in enumerate(models):
        xs = [d + (i - (len(models) - 1) / 2) * width for d in range(len(datasets))]
        ax.bar(xs, [cell.get((model, ds), 0.0) for ds in datasets], width, label=model)
    ax.set_xticks(range(len(datasets)))
    ax.set_xticklabels(datasets, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("main score")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return _atomic_write(Path(path), buf.getvalue())


def write_reports(
    out_dir: str | Path,
    rows: Sequence[ResultRow],
    models: Sequence[str] | None = None,
    plot: bool = False,
    stem: str = "eval",
    **meta: Any,
) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` (and ``<stem>.png`` with ``plot``) under ``out_dir``."""
    out = Path(out_dir)
    paths = {
        "json": atomic_write_text(
            out / f"{stem}.json", json.dumps(report_dict(rows, models, **meta), indent=2) + "\n"
        ),
        "markdown": atomic_write_text(out / f"{stem}.md", markdown_table(rows, models)),
    }
    if plot:
        paths["png"] = plot_bars(out / f"{stem}.png", rows, models)
    return paths


def log_rows_to_store(store: Any, rows: Iterable[ResultRow], run_id: str | None = None) -> int:
    """Record each row's main score and its standard metrics in the ``evals`` table; returns the count."""
    n = 0
    for row in rows:
        values = {row.main_metric: row.main_score}
        values.update({k: v for k, v in row.metrics.items() if k in STORE_METRICS})
        for metric, value in values.items():
            store.log_eval(row.dataset, metric, float(value), row.model, run_id=run_id)
            n += 1
    return n
