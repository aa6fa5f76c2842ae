"""Plain progress lines for logs (non-TTY): one line per logging step with step/total, eta and metrics."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

from rerankctl.train.callbacks import RichProgressCallback  # noqa: E402
from rerankctl.train.progress import (  # noqa: E402
    PlainProgressCallback,
    clock,
    progress_callbacks,
    progress_line,
)


def test_clock():
    assert clock(0) == "0:00:00" and clock(61.4) == "0:01:01" and clock(3725) == "1:02:05"


def test_line_has_every_field_in_order():
    line = progress_line(
        "sft r",
        20,
        375,
        0.053,
        {"loss": 2.05512, "learning_rate": 1.05e-4, "docs_per_sec": 21.34},
        98.0,
        1739.5,
    )
    assert line == (
        "sft r step 20/375 (5%) | epoch 0.05 | loss 2.0551 | lr 1.05e-04 | 21.3 docs/s"
        " | elapsed 0:01:38 | eta 0:29:00"
    )
    eval_line = progress_line("x", 5, 10, None, {"eval_ndcg@10": 0.5, "eval_p@1": 0.1}, 1, None)
    assert eval_line == "x step 5/10 (50%) | eval ndcg@10 0.5000 | elapsed 0:00:01 | eta ?"


def test_callback_writes_one_line_per_log_with_eta_from_the_steps_run_here(monkeypatch):
    times = iter([100.0, 130.0, 160.0])
    monkeypatch.setattr("rerankctl.train.progress.time.monotonic", lambda: next(times))
    out = io.StringIO()
    cb = PlainProgressCallback("sft r", stream=out)
    state = SimpleNamespace(global_step=50, max_steps=150, epoch=1.0, is_world_process_zero=True)
    cb.on_train_begin(None, state, None)  # resumed at step 50
    state.global_step = 60
    cb.on_log(None, state, None, logs={"loss": 1.0})
    state.global_step = 70
    cb.on_log(None, state, None, logs={"loss": 0.5})
    lines = out.getvalue().splitlines()
    # 30 s for 10 steps -> 90 steps left = 270 s; then 60 s for 20 steps -> 80 left = 240 s
    assert lines[0].endswith("elapsed 0:00:30 | eta 0:04:30") and "step 60/150 (40%)" in lines[0]
    assert lines[1].endswith("elapsed 0:01:00 | eta 0:04:00") and "loss 0.5000" in lines[1]


def test_terminal_gets_the_bar_and_a_pipe_the_lines(monkeypatch):
    from rich.console import Console

    monkeypatch.delenv("RERANKCTL_PROGRESS", raising=False)
    assert isinstance(
        progress_callbacks(Console(file=io.StringIO(), force_terminal=True), "x")[0], RichProgressCallback
    )
    assert isinstance(progress_callbacks(Console(file=io.StringIO()), "x")[0], PlainProgressCallback)
    monkeypatch.setenv("RERANKCTL_PROGRESS", "none")
    assert progress_callbacks(Console(file=io.StringIO()), "x") == []


@pytest.mark.slow
def test_train_sft_through_a_pipe_prints_a_line_per_logging_step(tmp_path):
    """`rerankctl train sft --preset tiny 2>&1 | cat`, shortened: >= 10 progress lines while it runs."""
    env = {**os.environ, "RERANKCTL_HOME": str(tmp_path / "home")}
    env.pop("RERANKCTL_PROGRESS", None)
    args = ["--preset", "tiny", "--max-steps", "10", "--logging-steps", "1", "--eval-steps", "1000",
            "--synth-train-queries", "40", "--synth-eval-queries", "8", "-o", str(tmp_path / "out")]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "rerankctl", "train", "sft", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]
    lines = [line for line in proc.stdout.splitlines() if " step " in line and "/10 (" in line]
    assert len(lines) >= 10, proc.stdout
    assert all("elapsed" in line and "eta" in line for line in lines)
    assert any("loss" in line and "lr" in line and "docs/s" in line and "epoch" in line for line in lines)
