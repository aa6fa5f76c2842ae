"""`rerankctl train rl` end to end on the tiny model: run store, per-step RL metrics, outputs, resume."""

from __future__ import annotations

import json

import pytest
from cli_helpers import main_exit as _main


def _small(tiny_qwen3_path, out_dir, *extra):
    """The tiny_rl preset shrunk to seconds: 40 train / 12 eval queries, 4 documents per group."""
    return [
        "train",
        "rl",
        "--preset",
        "tiny_rl",
        "--sft-model",
        str(tiny_qwen3_path),
        "-o",
        str(out_dir),
        "--max-docs",
        "4",
        "--num-samples",
        "4",
        "--batch-size",
        "2",
        "--logging-steps",
        "1",
        "--eval-steps",
        "2",
        "--save-steps",
        "2",
        "--kl-coef",
        "0.05",
        *extra,
    ]


def test_train_rl_logs_rl_metrics_saves_outputs_and_resumes(tiny_qwen3_path, tmp_path, capsys):
    from rerankctl.store import RunStore

    out_dir = tmp_path / "rl"
    sizes = ["--eval-max-queries", "12"]
    code, out, err = _main(
        [
            *_small(tiny_qwen3_path, out_dir, "--max-steps", "2", "--run-name", "a"),
            *sizes,
            "--loss-type",
            "grpo",
        ],
        capsys,
    )
    assert code == 0, err
    assert "after RL" in out and "model saved to" in out
    store = RunStore.open()
    run = store.get_run("a")
    assert run.kind == "rl" and run.status == "completed" and run.config["loss_type"] == "grpo"
    keys = set(store.metric_keys(run.id))
    assert {
        "loss",
        "reward_mean",
        "reward_std",
        "kl",
        "clip_fraction",
        "advantage_mean",
        "advantage_std",
        "entropy",
        "eval_ndcg@10",
        "eval_mrr",
    } <= keys
    kl = store.metric_series(run.id, "kl")
    assert kl[0] == (1, 0.0)  # step 1 trains on the untouched SFT policy: KL exactly 0
    assert [s for s, _ in store.metric_series(run.id, "eval_ndcg@10")][0] == 0  # the SFT model's baseline
    assert (out_dir / "final" / "config.json").is_file()  # merged: a plain model directory
    assert json.loads((out_dir / "rl_adapter" / "adapter_config.json").read_text())["r"] == 16
    assert (out_dir / "checkpoint-2").is_dir()

    # `runs show` of the RL run summarises its update statistics (issue 19)
    code, shown, err = _main(["runs", "show", "a", "--json"], capsys)
    assert code == 0, err
    rl = json.loads(shown)["rl_stats"]
    for key in ("clip_fraction", "ratio_mean", "ratio_min", "ratio_max", "reward_mean", "kl", "entropy"):
        assert key in rl and rl[key]["step"] == 2, key
    # one pass per rollout: the ratio is exactly 1 and nothing is clipped
    assert rl["ratio_min"]["min"] == rl["ratio_max"]["max"] == 1.0 and rl["clip_fraction"]["max"] == 0.0
    code, shown, err = _main(["runs", "show", "a"], capsys)
    table = shown[shown.index("RL updates") :]
    for key in ("clip_fraction", "ratio_mean", "ratio_min", "ratio_max", "reward_mean", "kl", "entropy"):
        assert key in table, key

    from rerankctl.models.reranker import Qwen3Reranker

    ranking, _ = Qwen3Reranker(str(out_dir / "final"), device="cpu", max_length=128).rerank(
        "red chair", ["a", "b"]
    )
    assert sorted(ranking) == [0, 1]

    code, _, err = _main(
        [
            *_small(tiny_qwen3_path, out_dir, "--max-steps", "4", "--resume", "latest", "--run-name", "b"),
            *sizes,
            "--loss-type",
            "grpo",
        ],
        capsys,
    )
    assert code == 0, err
    # The resumed training continues run "a" (one curve), each step logged once.
    assert [r.name for r in store.list_runs(kind="rl")] == ["a"]
    steps = [s for s, _ in store.metric_series(store.get_run("a").id, "loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 4
    assert any(e.message.startswith("resumed from checkpoint-2") for e in store.events(run.id))


def test_dpo_run_starts_at_log_2(tiny_qwen3_path, tmp_path, capsys):
    import math

    from rerankctl.store import RunStore

    code, _, err = _main(
        [
            *_small(tiny_qwen3_path, tmp_path / "d", "--max-steps", "1", "--run-name", "d"),
            "--loss-type",
            "dpo",
            "--eval-max-queries",
            "4",
        ],
        capsys,
    )
    assert code == 0, err
    store = RunStore.open()
    loss = store.metric_series(store.get_run("d").id, "loss")
    assert loss[0][1] == pytest.approx(math.log(2), abs=1e-4)


def test_print_config_and_bad_input(tmp_path, capsys):
    code, out, _ = _main(
        ["train", "rl", "--preset", "qwen3_0.6b_rl_dapo", "--kl-coef", "0.04", "--print-config"], capsys
    )
    assert code == 0 and 'loss_type = "dapo"' in out and "kl_coef = 0.04" in out
    code, _, err = _main(
        ["train", "rl", "--preset", "tiny_rl", "--sft-model", str(tmp_path / "missing")], capsys
    )
    assert code != 0 and "missing" in err and err.count("\n") == 1
    code, _, err = _main(["train", "rl", "--loss-type", "ppo", "--print-config"], capsys)
    assert code == 2 and "--loss-type" in err
