"""`rerankctl train reward` and `eval reward` end to end on a tiny Qwen3 (CPU).

The data follows a learnable synthetic rule whose two answer vocabularies are balanced:
the prompt asks for an upbeat or a gloomy answer and the chosen answer uses the asked
vocabulary. Any fixed (e.g. untrained) scorer is right on one half and wrong on the
other, so an untrained model sits near 0.5 and only a model that learned the rule
(prompt x answer interaction) gets above it.
"""

from __future__ import annotations

import json
import random

import pytest

from rerankctl.cli.main import main

UPBEAT = "great excellent helpful correct clear precise kind useful".split()
GLOOMY = "awful wrong rude useless vague broken sloppy lazy".split()
TOPICS = ["cats", "dogs", "rain", "math", "code", "tea", "bikes", "music"]


def write_rule_data(path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as handle:
        for i in range(n):
            topic = rng.choice(TOPICS)
            up = " ".join(rng.choice(UPBEAT) for _ in range(4))
            down = " ".join(rng.choice(GLOOMY) for _ in range(4))
            want = "upbeat" if i % 2 == 0 else "gloomy"
            chosen, rejected = (up, down) if want == "upbeat" else (down, up)
            record = {
                "prompt": f"Be {want} about {topic} ({i})",
                "chosen": f"{topic}: {chosen}",
                "rejected": f"{topic}: {rejected}",
            }
            handle.write(json.dumps(record) + "\n")


def run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_qwen3_path):
    """One tiny training run shared by the assertions below (~20 optimizer steps)."""
    import os

    root = tmp_path_factory.mktemp("reward")
    home = root / "home"
    old = os.environ.get("RERANKCTL_HOME")
    os.environ["RERANKCTL_HOME"] = str(home)
    data = root / "rule.jsonl"
    write_rule_data(data, 400)
    argv = [
        "train",
        "reward",
        "--preset",
        "tiny_reward",
        "--model",
        str(tiny_qwen3_path),
        "--dataset",
        str(data),
        "--output",
        str(root / "out"),
        "--run-name",
        "tiny-rule",
        "--eval-steps",
        "10",
        "--epochs",
        "1",
    ]
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        if old is None:
            os.environ.pop("RERANKCTL_HOME", None)
        else:
            os.environ["RERANKCTL_HOME"] = old
    return {"root": root, "out": root / "out", "home": home, "data": data}


def test_accuracy_rises_from_chance_to_at_least_0_8(trained):
    report = json.loads((trained["out"] / "evaluation_report.json").read_text())
    assert report["baseline"]["accuracy"] == pytest.approx(0.5, abs=0.15)
    assert report["metrics"]["accuracy"] >= 0.8
    assert report["metrics"]["margin_mean"] > 0
    assert report["metrics"]["chosen_mean"] > report["metrics"]["rejected_mean"]
    assert report["global_step"] == 20  # 320 training pairs / batch 16


def test_output_layout(trained):
    names = sorted(p.name for p in trained["out"].iterdir())
    assert "final_model" in names and "evaluation_report.md" in names
    assert {"checkpoint_step_10", "checkpoint_step_20"} <= set(names)
    assert [n for n in names if n.startswith("best_model_step_")]  # exactly one best kept
    assert len([n for n in names if n.startswith("best_model_step_")]) == 1
    assert not [n for n in names if n.startswith("checkpoint-")]  # the Trainer's own names are renamed
    ckpt = trained["out"] / "checkpoint_step_10"
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"} <= {
        p.name for p in ckpt.iterdir()
    }


def test_run_store_has_metrics_and_artifacts(trained):
    from rerankctl.store import RunStore

    store = RunStore.open(trained["home"] / "runs.db")
    try:
        run = store.get_run("tiny-rule")
        assert run.kind == "reward" and run.status == "completed"
        kinds = {a.kind for a in store.artifacts(run.id)}
        assert {"checkpoint", "final", "report", "best"} <= kinds
        accuracy = [e for e in store.evals(run.id) if e.metric == "accuracy"]
        assert accuracy and accuracy[0].value >= 0.8
    finally:
        store.close()


def test_eval_reward_reproduces_the_report(trained, tmp_path, capsys):
    out = tmp_path / "eval"
    code, stdout, err = run(
        [
            "eval",
            "reward",
            "--model",
            str(trained["out"] / "final_model"),
            "--data",
            str(trained["data"]),
            "--output",
            str(out),
            "--max-length",
            "64",
            "--json",
            "--max-samples",
            "200",
        ],
        capsys,
    )
    if code == 2 and "No such command" in err:
        pytest.skip("`eval reward` is not hooked into the eval group yet")
    assert code == 0, err
    metrics = json.loads(stdout)["metrics"]
    assert metrics["pairs"] == 200 and metrics["accuracy"] >= 0.8
    assert (out / "evaluation_report.json").is_file() and (out / "evaluation_report.md").is_file()


def test_eval_only_flag_scores_a_trained_model(trained, tmp_path, capsys):
    code, out, err = run(
        [
            "train",
            "reward",
            "--eval-only",
            "--max-samples",
            "100",
            "--model-path",
            str(trained["out"] / "final_model"),
            "--eval-dataset",
            str(trained["data"]),
            "--max-length",
            "64",
            "--output",
            str(tmp_path / "e"),
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads((tmp_path / "e" / "evaluation_report.json").read_text())
    assert report["metrics"]["accuracy"] >= 0.8 and "accuracy" in out


def test_8bit_flags_fail_cleanly_without_a_gpu(tmp_path, capsys, tiny_qwen3_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    data = tmp_path / "d.jsonl"
    write_rule_data(data, 10)
    code, _, err = run(
        [
            "train",
            "reward",
            "--model",
            str(tiny_qwen3_path),
            "--dataset",
            str(data),
            "--8bit-optim",
            "--output",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 1 and "--8bit-optim needs a CUDA GPU" in err and "Traceback" not in err


def test_bad_record_names_file_line_and_field(tmp_path, capsys, tiny_qwen3_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n" + '{"prompt": "p"}\n')
    code, _, err = run(
        [
            "train",
            "reward",
            "--model",
            str(tiny_qwen3_path),
            "--dataset",
            str(data),
            "--output",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 2 and f"{data}:2" in err and "chosen" in err


def test_print_config_applies_size_under_flags(capsys):
    code, out, _ = run(
        [
            "train",
            "reward",
            "--preset",
            "qwen3_0.6b_reward",
            "--size",
            "small",
            "--lr",
            "3e-5",
            "--print-config",
        ],
        capsys,
    )
    assert code == 0
    assert "max_samples = 5000" in out and "lr = 3e-05" in out and 'model = "Qwen/Qwen3-0.6B"' in out


def test_lora_training_moves_only_adapter_and_head(tmp_path, tiny_qwen3_path):
    import torch

    from rerankctl.config.reward import RewardConfig
    from rerankctl.models.reward import RewardModel
    from rerankctl.train.reward import run_reward

    data = tmp_path / "d.jsonl"
    write_rule_data(data, 40)
    cfg = RewardConfig(
        model=str(tiny_qwen3_path),
        dataset=str(data),
        output=str(tmp_path / "o"),
        max_steps=2,
        batch=8,
        lr=1e-2,
        max_length=48,
        lora={"enabled": True, "r": 4, "alpha": 8},
        center_rewards=0.01,
        margin=True,
        gradient_checkpointing=True,
        warmup_ratio=0.0,
    )
    result = run_reward(cfg, callbacks=[])
    assert result.global_step == 2
    base = RewardModel.from_backbone(tiny_qwen3_path)
    final = RewardModel.from_pretrained(result.final_dir)
    base_emb = base.backbone.get_input_embeddings().weight
    assert torch.equal(final.backbone.get_input_embeddings().weight, base_emb)  # not a LoRA target
    q_base = base.backbone.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(final.backbone.layers[0].self_attn.q_proj.weight, q_base)  # merged adapter


def test_resume_continues_step_optimizer_and_scheduler(tmp_path, capsys, tiny_qwen3_path, rerankctl_home):
    """Stopping at step 5 and resuming to step 10 ends on the same weights as one 10-step run.

    Equal weights need the step, the AdamW moments, the LR schedule and the data order all
    restored; any of them starting fresh moves the final weights.
    """
    from safetensors.torch import load_file

    data = tmp_path / "rule.jsonl"
    write_rule_data(data, 200)
    common = ["train", "reward", "--preset", "tiny_reward", "--model", str(tiny_qwen3_path)]
    common += ["--dataset", str(data), "--max-steps", "10", "--save-steps", "5", "--eval-steps", "5"]
    code, _, err = run([*common, "--output", str(tmp_path / "whole"), "--run-name", "whole"], capsys)
    assert code == 0, err
    checkpoint = tmp_path / "whole" / "checkpoint_step_5"
    assert (checkpoint / "optimizer.pt").is_file() and (checkpoint / "scheduler.pt").is_file()
    resumed = [*common, "--output", str(tmp_path / "resumed"), "--run-name", "resumed"]
    code, _, err = run([*resumed, "--resume", str(checkpoint)], capsys)
    assert code == 0, err

    state = json.loads((tmp_path / "resumed" / "checkpoint_step_10" / "trainer_state.json").read_text())
    assert state["global_step"] == 10
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps and logged_steps[-1] == 10
    whole = load_file(str(tmp_path / "whole" / "final_model" / "model.safetensors"))
    again = load_file(str(tmp_path / "resumed" / "final_model" / "model.safetensors"))
    assert whole.keys() == again.keys()
    for name, tensor in whole.items():
        assert (tensor - again[name]).abs().max().item() < 1e-5, name
    # ...and the resumed run did train: the step-5 weights differ from the final ones.
    at_step_5 = load_file(str(checkpoint / "model.safetensors"))
    assert max((at_step_5[n] - again[n]).abs().max().item() for n in again) > 1e-4
    from rerankctl.store import RunStore

    run_row = RunStore.open().get_run("resumed")
    assert run_row.status == "completed" and run_row.summary["global_step"] == 10

    code, _, err = run([*resumed, "--resume", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "not a checkpoint folder" in err


def test_tiny_reward_preset_learns_the_builtin_synth_rule(tmp_path, capsys, rerankctl_home):
    """The preset exactly as shipped (built-in model and synth preferences): accuracy ~0.5 -> >= 0.8."""
    code, out, err = run(
        ["train", "reward", "--preset", "tiny_reward", "--output", str(tmp_path / "o")], capsys
    )
    assert code == 0, err
    report = json.loads((tmp_path / "o" / "evaluation_report.json").read_text())
    assert report["baseline"]["accuracy"] == pytest.approx(0.5, abs=0.1)
    assert report["metrics"]["accuracy"] >= 0.8
    assert abs(report["metrics"]["pairs"] - 400) <= 40  # ~20% of 2,000 synth pairs, split by prompt
    assert "accuracy" in out
