"""`rerankctl train sft` end to end on the tiny model: run store, artifacts, resume, failure states."""

from __future__ import annotations

import json
import textwrap

import pytest
from cli_helpers import main_exit as _main


@pytest.fixture
def small_preset(tmp_path, tiny_qwen3_path):
    """The tiny preset, shrunk so a run takes seconds: 40 train / 12 eval queries."""
    path = tmp_path / "small.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            model = "{tiny_qwen3_path}"
            data = "builtin:synth-rerank"
            max_length = 128
            n_docs = 4
            n_pos = 1
            learning_rate = 2e-3
            batch_size = 4
            logging_steps = 2
            eval_steps = 5
            save_steps = 5
            synth_train_queries = 40
            synth_eval_queries = 12
            [lora]
            enabled = false
            [preset]
            command = "train sft"
            description = "test"
            """
        )
    )
    return path


def _store():
    from rerankctl.store import RunStore

    return RunStore.open()


def _modes(folder):
    import os
    import stat

    return {p.name: oct(stat.S_IMODE(os.stat(p).st_mode)) for p in [folder, *folder.iterdir()]}


def test_train_sft_writes_run_store_and_final_model(small_preset, tmp_path, capsys):
    import os

    out_dir = tmp_path / "run"
    old_umask = os.umask(0o022)
    code, out, err = _main(
        [
            "train",
            "sft",
            "--preset",
            str(small_preset),
            "--max-steps",
            "10",
            "-o",
            str(out_dir),
            "--run-name",
            "t1",
        ],
        capsys,
    )
    assert code == 0, err
    assert "ndcg@10" in out and "model saved to" in out
    store = _store()
    run = store.get_run("t1")
    assert run.status == "completed" and run.kind == "sft"
    assert run.config["n_docs"] == 4 and run.output_dir == str(out_dir)
    keys = set(store.metric_keys(run.id))
    assert {
        "loss",
        "learning_rate",
        "grad_norm",
        "tokens_per_sec",
        "docs_per_sec",
        "eval_ndcg@10",
        "eval_mrr",
        "eval_map",
    } <= keys
    series = store.metric_series(run.id, "eval_ndcg@10")
    assert (
        series[0][0] == 0 and [step for step, _ in series][-1] == 10
    )  # baseline at step 0, then evaluations
    kinds = {a.kind for a in store.artifacts(run.id)}
    assert {"checkpoint", "best", "final"} <= kinds
    assert (out_dir / "final" / "config.json").is_file()
    assert (out_dir / "checkpoint-10").is_dir()
    os.umask(old_umask)
    # Modes follow the umask (022): readable by everyone, though safetensors writes 0600 files.
    for folder in (out_dir / "final", out_dir / "checkpoint-10"):
        modes = _modes(folder)
        assert modes.pop(folder.name) == "0o755" and set(modes.values()) == {"0o644"}, modes
        assert ".complete" in modes
    assert sorted(p.name for p in out_dir.iterdir() if p.name.startswith(".")) == []  # no temp or lock left
    summary = run.summary
    assert summary["global_step"] == 10 and "final_ndcg@10" in summary and "baseline_ndcg@10" in summary

    # The trained model loads through the ordinary reranker path and ranks.
    from rerankctl.models.reranker import Qwen3Reranker

    ranking, scores = Qwen3Reranker(str(out_dir / "final"), device="cpu", max_length=128).rerank(
        "red chair", ["a", "b"]
    )
    assert sorted(ranking) == [0, 1] and len(scores) == 2


def test_resume_continues_from_the_checkpoint(small_preset, tmp_path, capsys):
    out_dir = tmp_path / "run"
    base = ["train", "sft", "--preset", str(small_preset), "-o", str(out_dir)]
    assert _main([*base, "--max-steps", "5", "--run-name", "a"], capsys)[0] == 0
    first_losses = dict(_store().metric_series(_store().get_run("a").id, "loss"))
    code, _, err = _main([*base, "--max-steps", "10", "--resume", "latest", "--run-name", "b"], capsys)
    assert code == 0, err
    store = _store()
    # The resumed training continues run "a": one run, its curve unbroken, an event marking the resume.
    assert [r.name for r in store.list_runs()] == ["a"]
    resumed = store.get_run("a")
    assert resumed.status == "completed" and resumed.config["max_steps"] == 10
    series = store.metric_series(resumed.id, "loss")
    steps = [step for step, _ in series]
    assert steps == sorted(set(steps)) and steps[-1] == 10  # each step once, in order
    assert {s: v for s, v in series if s <= 5} == first_losses  # the first part is kept as logged
    events = [e.message for e in store.events(resumed.id)]
    assert any(m.startswith("resumed from checkpoint-5 (step 5)") for m in events), events
    state = json.loads((out_dir / "checkpoint-10" / "trainer_state.json").read_text())
    assert state["global_step"] == 10


def test_lora_run_saves_an_adapter(small_preset, tmp_path, capsys):
    out_dir = tmp_path / "lora"
    code, _, err = _main(
        [
            "train",
            "sft",
            "--preset",
            str(small_preset),
            "--lora",
            "--lora-r",
            "4",
            "--max-steps",
            "2",
            "--chunk-size",
            "3",
            "--loss-type",
            "lambdaloss",
            "-o",
            str(out_dir),
        ],
        capsys,
    )
    assert code == 0, err
    adapter = json.loads((out_dir / "final" / "adapter_config.json").read_text())
    assert adapter["r"] == 4


def test_a_failing_run_is_marked_failed_with_the_error(small_preset, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["a"], "neg": ["b"]}\n{"query": 3}\n')
    code, _, err = _main(
        [
            "train",
            "sft",
            "--preset",
            str(small_preset),
            "--data",
            str(bad),
            "--max-steps",
            "2",
            "-o",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert code == 2
    assert str(bad) in err and err.count("\n") == 1


def test_ctrl_c_marks_the_run_killed(small_preset, tmp_path, monkeypatch, capsys):
    from rerankctl.train import sft

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sft.ContrastiveSFTTrainer, "training_step", interrupt)
    code, _, err = _main(
        [
            "train",
            "sft",
            "--preset",
            str(small_preset),
            "--max-steps",
            "3",
            "-o",
            str(tmp_path / "r"),
            "--run-name",
            "k",
        ],
        capsys,
    )
    assert code == 130
    hint = f"interrupted; to continue this training, run the same command with --resume latest --output {tmp_path / 'r'}"
    assert err.splitlines()[-1] == hint and err.count("interrupted") == 1  # one line says how to resume
    run = _store().get_run("k")
    assert run.status == "killed" and "Ctrl-C" in (run.error or "")


@pytest.mark.slow
def test_two_cpu_processes_over_gloo(small_preset, tmp_path, rerankctl_home):
    """`--gpus cpu:2` re-runs the command under torch.distributed.run; only rank 0 writes the store."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "rerankctl",
        "train",
        "sft",
        "--preset",
        str(small_preset),
        "--max-steps",
        "3",
        "--gpus",
        "cpu:2",
        "-o",
        str(tmp_path / "ddp"),
        "--run-name",
        "ddp",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("model saved to") == 1  # one summary, from rank 0
    runs = _store().list_runs()
    assert [r.name for r in runs] == ["ddp"] and runs[0].status == "completed"
    assert (tmp_path / "ddp" / "final" / "config.json").is_file()
