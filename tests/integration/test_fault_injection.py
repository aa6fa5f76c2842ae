"""Fault injection: a tiny SFT training killed with SIGKILL at 10 random moments, resumed each time.

Half of the kills wait for a checkpoint save to start (its ``.tmp-checkpoint-N`` staging folder
appears; ``RERANKCTL_FAULT_SLEEP`` holds the save open 0.3 s before its ``.complete`` marker)
and land at a random moment of it; the other half land at a random moment after a checkpoint
was published, in the steps that follow or in the next save. Every attempt after the first
starts with ``--resume latest`` once a checkpoint exists. The training must then finish, and
its logged loss at every step, and its final weights, must equal those of an uninterrupted run.
Then one SIGTERM and one Ctrl-C (SIGINT) must stop it cleanly (exit 143 / 130, the run recorded
``killed`` with the signal, the resume hint printed) and resume as well.

Each attempt is a fresh process forked from a "zygote" that has imported torch and
transformers once (no torch op runs in the zygote, so the fork is clean): on this shared
2-core machine a cold ``python -m rerankctl`` start costs ~7 s of CPU, ten of them would not
fit in the test's budget. The child runs the real CLI entry point (``rerankctl.cli.main``).
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SEED = 11
KILLS = 10
MAX_STEPS = 24
SAVE_STEPS = 2
FAULT_SLEEP = 0.3

ZYGOTE = r"""
import json, os, sys, traceback
import torch, transformers, peft  # heavy imports once, before any fork
from transformers import Trainer  # noqa: F401
import rerankctl.train.sft_runner, rerankctl.train.sft  # noqa: F401
from rerankctl.cli.main import main

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.update(req["env"])
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 0
        try:
            main(req["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(json.dumps({"started": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"pid": pid, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                      "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
"""


class Zygote:
    """A process that forks one training child per request and reports its pid and exit."""

    def __init__(self, tmp_path: Path) -> None:
        script = tmp_path / "zygote.py"
        script.write_text(ZYGOTE)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._next(timeout=300) == {"ready": True}
        self.log = tmp_path / "attempts.log"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _next(self, timeout: float) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"zygote: nothing within {timeout} s; see {self.log}") from None

    def start(self, argv: list[str], env: dict | None = None) -> int:
        with open(self.log, "a") as fh:
            fh.write(f"\n=== {' '.join(argv)}\n")
        request = {"argv": argv, "env": env or {}, "log": str(self.log)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._next(timeout=60)["started"]

    def poll(self) -> dict | None:
        """The exit report of the running child, if it has exited."""
        try:
            return self.lines.get_nowait()
        except queue.Empty:
            return None

    def wait(self, timeout: float = 300) -> dict:
        return self._next(timeout)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _wait_for(condition, report, zygote: Zygote, timeout: float = 240.0) -> dict | None:
    """Poll ``condition`` every 5 ms; returns the child's exit report if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return None
        exited = zygote.poll()
        if exited is not None:
            return exited
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting during {report}")


def _staging(out: Path) -> list[Path]:
    return [p for p in out.glob(".tmp-checkpoint-*")] if out.is_dir() else []


def _new_save_started(out: Path):
    """A condition: a checkpoint save of the attempt just started is in progress."""
    leftover = set(_staging(out))

    def started() -> bool:
        nonlocal leftover
        now = set(_staging(out))
        leftover &= now  # gone once: a later folder of that name is a new save
        return bool(now - leftover)

    return started


def _complete_steps(out: Path) -> set[int]:
    from rerankctl.train.checkpointing import COMPLETE_MARKER

    if not out.is_dir():
        return set()
    return {int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / COMPLETE_MARKER).is_file()}


@pytest.fixture
def fault_setup(tmp_path, tiny_qwen3_path):
    from rerankctl.data.io import write_jsonl
    from rerankctl.data.synth import synth_rerank

    data = tmp_path / "train.jsonl"
    write_jsonl(data, synth_rerank(80, seed=3))
    preset = tmp_path / "fi.toml"
    preset.write_text(
        textwrap.dedent(
            f"""
            model = "{tiny_qwen3_path}"
            data = "{data}"
            max_length = 160
            n_docs = 4
            n_pos = 1
            learning_rate = 2e-3
            batch_size = 2
            max_steps = {MAX_STEPS}
            logging_steps = 1
            save_steps = {SAVE_STEPS}
            save_total_limit = 3
            [lora]
            enabled = false
            [preset]
            command = "train sft"
            description = "fault injection"
            """
        )
    )
    return preset


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path, fault_setup):
    from safetensors.torch import load_file

    from rerankctl.store import RunStore

    zygote = Zygote(tmp_path)
    base = ["train", "sft", "--preset", str(fault_setup)]
    try:
        zygote.start([*base, "-o", str(tmp_path / "ref"), "--run-name", "ref"])
        report = zygote.wait()
        assert report["code"] == 0, (tmp_path / "attempts.log").read_text()[-3000:]

        rng = random.Random(SEED)
        out = tmp_path / "out"
        fault_env = {"RERANKCTL_FAULT_SLEEP": f"before-complete:{FAULT_SLEEP}"}
        kills: list[dict] = []
        while len(kills) < KILLS:
            resume = ["--resume", "latest"] if _complete_steps(out) else []
            before = _complete_steps(out)
            pid = zygote.start([*base, "-o", str(out), "--run-name", "fi", *resume], env=fault_env)
            mode = rng.choice(["in-save", "after-save"])
            if mode == "in-save":
                # A staging folder left by the previous kill is removed by this attempt's
                # --resume first; only a save started by this attempt counts.
                exited = _wait_for(_new_save_started(out), f"kill {len(kills)}", zygote)
                delay = rng.uniform(0.0, 0.45)
            else:
                exited = _wait_for(lambda: _complete_steps(out) - before, f"kill {len(kills)}", zygote)
                delay = rng.uniform(0.0, 0.25)
            assert exited is None, f"attempt {len(kills)} ended before its kill: {exited}"
            time.sleep(delay)
            inside = bool(_staging(out))  # a save was in progress at the moment of the kill
            os.kill(pid, signal.SIGKILL)
            report = zygote.wait()
            assert report["signal"] == signal.SIGKILL, report
            kills.append(
                {"mode": mode, "delay": round(delay, 3), "inside_save": inside, "resumed": bool(resume)}
            )

        # SIGTERM and Ctrl-C (SIGINT) stop the training cleanly: exit 128+N, the run recorded killed
        # with the signal named, Ctrl-C printing how to resume.
        stops = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            before = _complete_steps(out)
            pid = zygote.start([*base, "-o", str(out), "--run-name", "fi", "--resume", "latest"])
            exited = _wait_for(lambda: _complete_steps(out) - before, f"{sig.name}", zygote)
            assert exited is None, exited
            os.kill(pid, sig)
            stops.append((zygote.wait(), RunStore.open().get_run("fi")))

        zygote.start([*base, "-o", str(out), "--run-name", "fi", "--resume", "latest"])
        report = zygote.wait()
        log = (tmp_path / "attempts.log").read_text()
        assert report["code"] == 0, log[-3000:]
    finally:
        zygote.close()

    (term, term_run), (intr, intr_run) = stops
    assert term["code"] == 143 and term_run.status == "killed" and term_run.error == "killed by SIGTERM"
    assert intr["code"] == 130 and intr_run.status == "killed" and "Ctrl-C" in intr_run.error
    assert "stopped by SIGTERM\n" in log
    assert (
        f"interrupted; to continue this training, run the same command with --resume latest --output {out}\n"
        in log
    )

    print("kills:", kills)  # shown with -s: mode, delay, whether a save was in progress
    assert sum(k["inside_save"] for k in kills) >= 3, kills  # some kills really landed inside saves
    assert "Can't find a valid checkpoint" not in log

    store = RunStore.open()
    runs = {r.name: r for r in store.list_runs()}
    assert set(runs) == {"ref", "fi"}, runs  # ten resumes, still one run
    assert runs["fi"].status == "completed" and runs["fi"].summary["global_step"] == MAX_STEPS
    expected = store.metric_series(runs["ref"].id, "loss")
    got = store.metric_series(runs["fi"].id, "loss")
    assert [s for s, _ in expected] == list(range(1, MAX_STEPS + 1))
    assert got == expected, (kills, got, expected)  # every step once, the same loss bit for bit
    resumes = [e.message for e in store.events(runs["fi"].id) if e.message.startswith("resumed from")]
    assert len(resumes) == sum(k["resumed"] for k in kills) + 3
    assert "killed by SIGTERM" in [e.message for e in store.events(runs["fi"].id)]

    ref = load_file(str(tmp_path / "ref" / "final" / "model.safetensors"))
    fin = load_file(str(out / "final" / "model.safetensors"))
    assert ref.keys() == fin.keys() and all((ref[k] == fin[k]).all() for k in ref)
    assert not _staging(out) and not list(out.glob(".*lock*"))
