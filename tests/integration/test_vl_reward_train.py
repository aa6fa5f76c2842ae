"""`train vl-reward` on a tiny random Qwen2-VL with Pillow images (CPU).

The rule: a solid, noisy red or blue square; the question asks its colour; the chosen
answer names the true colour. Both answers occur equally often as chosen, so only a
model that looks at the image can beat 0.5.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import TrainerCallback

from rerankctl.config.vl_reward import VLRewardConfig
from rerankctl.errors import DataError
from rerankctl.train.vl_reward import run_vl_reward

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def write_colour_data(folder, n: int, seed: int = 0):
    from PIL import Image

    rng = random.Random(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    path = folder / "data.jsonl"
    with path.open("w") as handle:
        for i in range(n):
            colour = "red" if i % 2 == 0 else "blue"
            other = "blue" if colour == "red" else "red"
            rgb = tuple(max(0, min(255, v + rng.randint(-30, 30))) for v in COLOURS[colour])
            Image.new("RGB", (56, 56), rgb).save(folder / "img" / f"{i}.png")
            first = rng.random() < 0.5
            responses = [f"It is {colour}.", f"It is {other}."]
            record = {
                "id": f"c{i}",
                "query": "What colour is the image?",
                "image": f"img/{i}.png",
                "response": responses if first else responses[::-1],
                "human_ranking": [0, 1] if first else [1, 0],
            }
            handle.write(json.dumps(record) + "\n")
    return path


def config(model, data, out, **overrides) -> VLRewardConfig:
    values = dict(
        model=str(model),
        train_data=str(data),
        output_dir=str(out),
        min_pixels=3136,
        max_pixels=3136,
        max_length=96,
        lr=2e-3,
        weight_decay=0.0,
        warmup_ratio=0.0,
        lr_scheduler="linear",
        batch=16,
        eval_batch=32,
        grad_accum=1,
        logging_steps=4,
        experiment_name="t",
    )
    values.update(overrides)
    return VLRewardConfig(**values)


class StateAtStart(TrainerCallback):
    """Records the step, optimizer state and scheduler position when training begins."""

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        self.step = state.global_step
        self.optimizer_state = {
            k: {n: t.clone() if torch.is_tensor(t) else t for n, t in v.items()}
            for k, v in optimizer.state_dict()["state"].items()
        }
        self.scheduler_epoch = lr_scheduler.last_epoch


def test_tiny_vl_reward_learns_the_colour_rule(tmp_path, tiny_vl_path, rerankctl_home):
    from rerankctl.store import RunStore

    data = write_colour_data(tmp_path / "data", 160)
    result = run_vl_reward(
        config(tiny_vl_path, data, tmp_path / "runs", max_steps=16, eval_steps=8, log_samples=2), callbacks=[]
    )
    # No bound on the baseline's accuracy: at init 0.1 a random model's score already depends on the
    # image, so on a two-colour rule it starts far from 0.5 on either side (0.875 for this seed).
    assert result.final["accuracy"] >= max(0.9, result.baseline["accuracy"])
    assert result.final["loss"] < result.baseline["loss"] - 0.05
    assert result.run_dir.name.startswith("t_") and (result.run_dir / "final_model").is_dir()
    scores = torch.tensor([result.final["chosen_min"], result.final["rejected_max"]])
    assert bool(
        ((scores >= -5) & (scores <= 5)).all()
    )  # mapped into [score_min, score_max] = the default -5..5
    store = RunStore.open(rerankctl_home / "runs.db")
    try:
        events = [e.message for e in store.events(result.run_id)]
    finally:
        store.close()
    samples = [m for m in events if m.startswith("sample c")]
    # --log-samples 2 at each evaluation: the baseline, steps 8 and 16, and the final one.
    assert len(samples) == 2 * 4 and all(("ok" in m) != ("WRONG" in m) for m in samples)


def test_resume_continues_state_and_weights_only_starts_fresh(tmp_path, tiny_vl_path):
    from safetensors.torch import load_file

    data = write_colour_data(tmp_path / "data", 30)
    # Run A: 4 steps, a checkpoint each step, only the 2 newest kept.
    a = run_vl_reward(
        config(
            tiny_vl_path,
            data,
            tmp_path / "runs",
            batch=4,
            max_steps=4,
            save_steps=1,
            eval_steps=2,
            save_total_limit=2,
            lr_scheduler="linear",
        ),
        callbacks=[],
    )
    kept = sorted(p.name for p in a.run_dir.glob("checkpoint_step_*"))
    assert kept == ["checkpoint_step_3", "checkpoint_step_4"]  # old checkpoints cleaned up
    ckpt = a.run_dir / "checkpoint_step_3"

    # Run B: full resume from step 3 to step 4 continues A exactly.
    seen = StateAtStart()
    b = run_vl_reward(
        config(
            tiny_vl_path,
            data,
            tmp_path / "runs",
            batch=4,
            max_steps=4,
            save_steps=1,
            eval_steps=2,
            save_total_limit=2,
            resume=str(ckpt),
        ),
        callbacks=[seen],
    )
    assert b.run_dir == a.run_dir and seen.step == 3 and seen.scheduler_epoch == 3
    saved = torch.load(ckpt / "optimizer.pt", weights_only=True)["state"]
    assert saved.keys() == seen.optimizer_state.keys()
    key = next(iter(saved))
    assert torch.equal(saved[key]["exp_avg"], seen.optimizer_state[key]["exp_avg"])
    final_a = load_file(str(a.run_dir / "checkpoint_step_4" / "model.safetensors"))
    final_b = load_file(str(b.final_dir / "model.safetensors"))
    assert all(torch.allclose(final_a[k], final_b[k], atol=1e-5) for k in final_a)

    # Run C: weights only -> a new run directory, step 0, empty optimizer, weights of the checkpoint.
    fresh = StateAtStart()
    c = run_vl_reward(
        config(
            tiny_vl_path,
            data,
            tmp_path / "runs",
            batch=4,
            max_steps=1,
            eval_steps=1,
            resume=str(ckpt),
            load_weights_only=True,
            lr=1e-12,
        ),
        callbacks=[fresh],
    )
    assert (
        c.run_dir != a.run_dir
        and fresh.step == 0
        and fresh.optimizer_state == {}
        and fresh.scheduler_epoch == 0
    )
    start = load_file(str(ckpt / "model.safetensors"))
    after = load_file(str(c.final_dir / "model.safetensors"))
    assert all(torch.allclose(start[k], after[k], atol=1e-6) for k in start)  # lr ~0: still the checkpoint


def test_test_only_writes_scores_jsonl(tmp_path, tiny_vl_path):
    from rerankctl.models.vl_reward import VLHeadConfig, VLRewardModel

    data = write_colour_data(tmp_path / "data", 6)
    model = VLRewardModel.from_backbone(tiny_vl_path, VLHeadConfig(min_pixels=3136, max_pixels=3136))
    model.save_pretrained(tmp_path / "m")
    out = tmp_path / "scores.jsonl"
    result = run_vl_reward(
        config(
            tiny_vl_path,
            data,
            tmp_path / "runs",
            test_only=True,
            model_path=str(tmp_path / "m"),
            test_data=str(data),
            test_output=str(out),
        )
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"c{i}" for i in range(6)]
    for row in rows:
        assert len(row["scores"]) == 2 and all(
            -5 <= s <= 5 for s in row["scores"]
        )  # the default range, -5..5
        assert row["correct"] == (row["predicted_ranking"] == row["human_ranking"])
    assert result.final["pairs"] == 6


def test_missing_and_corrupt_images_name_file_line_and_field(tmp_path, tiny_vl_path):
    from rerankctl.data.vl_dataset import load_vl_items, open_image

    data = write_colour_data(tmp_path / "data", 4)
    (tmp_path / "data" / "img" / "1.png").unlink()
    with pytest.raises(DataError) as info:
        load_vl_items(data)
    assert info.value.line == 2 and info.value.field == "image" and str(data) in info.value.message
    (tmp_path / "data" / "img" / "1.png").write_bytes(b"not a png")
    items, _ = load_vl_items(data)
    with pytest.raises(DataError) as info:
        open_image(items[1])
    assert info.value.line == 2 and info.value.field == "image" and "cannot read image" in info.value.message


def test_first_run_on_a_fresh_home_equals_later_runs(tmp_path, rerankctl_home):
    """Building the built-in model on first use seeds torch; the run's own seed must still decide the head."""
    data = write_colour_data(tmp_path / "data", 24)
    runs = [
        run_vl_reward(
            config("builtin:tiny-qwen2vl", data, tmp_path / f"runs{i}", batch=4, max_steps=2, eval_steps=2),
            callbacks=[],
        )
        for i in range(2)
    ]
    assert [p.name for p in (rerankctl_home / "cache" / "models").glob("tiny-qwen2vl*")] == [
        "tiny-qwen2vl-v2-seed0"
    ]
    first, second = (r.baseline for r in runs)
    assert first["loss"] == second["loss"] and first["chosen_mean"] == second["chosen_mean"]
    assert runs[0].final["loss"] == runs[1].final["loss"]
