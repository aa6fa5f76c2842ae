"""Scoring VL preference files with a trained VL reward model (`train vl-reward --test-only`).

Each record's two responses are scored in one batch; the output JSONL has one line per
record: ``{"id", "scores": [s0, s1], "predicted_ranking", "human_ranking", "correct"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rerankctl.config.vl_reward import VLRewardConfig


def score_vl_file(
    model: Any, encoder: Any, data: str, output: Path, batch_size: int = 4, skip_invalid: bool = False
) -> tuple[Path, dict[str, float]]:
    """Score both responses of every record; write one JSON line per record (atomically)."""
    from rerankctl.data.io import write_jsonl
    from rerankctl.data.vl_dataset import load_vl_items, open_image
    from rerankctl.train.reward_eval import reward_metrics

    items, _ = load_vl_items(data, skip_invalid)
    device = next(model.parameters()).device
    model.eval()
    rows, chosen, rejected = [], [], []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            images = [open_image(i) for i in chunk]
            queries = [i.record.query for i in chunk]
            batch = encoder.encode(
                images + images,
                queries + queries,
                [i.record.responses[0] for i in chunk] + [i.record.responses[1] for i in chunk],
            )
            scores = model(**{k: v.to(device) for k, v in batch.items()})["scores"].float().cpu().tolist()
            n = len(chunk)
            for j, item in enumerate(chunk):
                pair = [scores[j], scores[n + j]]
                predicted = [0, 1] if pair[0] >= pair[1] else [1, 0]
                rows.append(
                    {
                        "id": item.record.id,
                        "scores": pair,
                        "predicted_ranking": predicted,
                        "human_ranking": item.record.human_ranking,
                        "correct": predicted == item.record.human_ranking,
                    }
                )
                chosen.append(pair[item.record.chosen_index])
                rejected.append(pair[1 - item.record.chosen_index])
    write_jsonl(output, rows)
    return output, reward_metrics(chosen, rejected)


def run_vl_test(cfg: VLRewardConfig, store_path: str | None = None) -> Any:
    """``--test-only``: score ``test_data`` with ``model_path`` and write the JSONL (+ metrics JSON)."""
    from rerankctl.data.vl_dataset import VLEncoder
    from rerankctl.errors import UsageError
    from rerankctl.models.loading import pick_device
    from rerankctl.models.vl_reward import VLRewardModel
    from rerankctl.train.reward_eval import write_reports
    from rerankctl.train.reward_store import open_run
    from rerankctl.train.vl_reward import VLRewardResult, new_run_dir

    if not cfg.model_path or not cfg.test_data:
        raise UsageError(
            "--test-only needs --model-path and --test-data", hint="point --model-path at final_model/"
        )
    model = VLRewardModel.from_pretrained(cfg.model_path, device=pick_device())
    head = model.vl_config
    encoder = VLEncoder(model.tokenizer, head.min_pixels, head.max_pixels, cfg.max_length)
    run_dir = new_run_dir(cfg.model_copy(update={"experiment_name": f"{cfg.experiment_name}-test"}))
    output = Path(cfg.test_output or run_dir / "test_scores.jsonl")
    store, writer = open_run(
        "vl-reward-test", cfg.to_dict(), cfg.run_name or run_dir.name, run_dir, cfg.tags, store_path
    )
    try:
        output, metrics = score_vl_file(
            model, encoder, cfg.test_data, output, cfg.eval_batch, cfg.skip_invalid
        )
        write_reports(output.parent, metrics, stem=output.stem + "_metrics", extra={"model": cfg.model_path})
        if writer is not None:
            for key, value in metrics.items():
                writer.log_eval(Path(cfg.test_data).name, key, value, model=cfg.model_path)
            writer.log_artifact("report", str(output))
            writer.finish("completed")
        return VLRewardResult(writer.id if writer else None, run_dir, None, {}, metrics, 0, output)
    except BaseException as exc:
        if writer is not None:
            writer.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if store is not None:
            store.close()
