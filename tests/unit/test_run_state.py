"""Training bookkeeping: resumed runs continue their store row, signals are recorded, pre-flight leaves nothing."""

from __future__ import annotations

import json
import os
import signal

import pytest

from rerankctl.errors import Interrupted, Terminated, UsageError
from rerankctl.store import RunStore
from rerankctl.train.output_lock import OutputLock
from rerankctl.train.run_state import begin_training


def _checkpoint(folder, step):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def _begin(out, resume=None, name="r", kind="sft"):
    from rerankctl.train.checkpointing import resolve_resume_arg

    return begin_training(
        kind,
        config={"max_steps": 9, "resume": resume},
        name=name,
        output_dir=out,
        resolve_resume=lambda: resolve_resume_arg(resume, out),
    )


def test_continue_run_reopens_it_and_drops_metrics_after_the_checkpoint(tmp_path):
    store = RunStore.open()
    writer = store.create_run("sft", {"max_steps": 4}, name="a", output_dir=str(tmp_path))
    writer.log_metrics(2, {"loss": 1.0})
    writer.log_metrics(4, {"loss": 0.5})
    writer.log_metrics(5, {"loss": 0.4})  # after the checkpoint at step 4: trained again on resume
    writer.finish("killed", error="killed by SIGTERM")
    assert store.run_for_output("sft", tmp_path).id == writer.id
    assert store.run_for_output("rl", tmp_path) is None

    again, dropped = store.continue_run(writer.id, 4, {"max_steps": 8})
    assert dropped == 1 and again.id == writer.id and again.name == "a"
    run = store.get_run("a")
    assert run.status == "running" and run.error is None and run.ended_at is None
    assert run.config == {"max_steps": 8} and run.pid == os.getpid()
    assert store.metric_series(run.id, "loss") == [(2, 1.0), (4, 0.5)]
    again.log_metrics(6, {"loss": 0.3})
    again.finish("completed")
    assert store.metric_series(run.id, "loss") == [(2, 1.0), (4, 0.5), (6, 0.3)]


def test_a_resume_in_the_same_output_continues_the_run(tmp_path, capsys):
    out = tmp_path / "out"
    with _begin(out).status() as session:
        first = session.writer.id
        session.writer.finish("completed")
    _checkpoint(out, 3)
    (out / ".tmp-checkpoint-6").mkdir()
    session = _begin(out, resume="latest", name="other")
    with session.status():
        assert session.continued and session.writer.id == first
        session.writer.finish("completed")
    assert "removed unfinished save(s) .tmp-checkpoint-6" in capsys.readouterr().err
    store = RunStore.open()
    assert len(store.list_runs()) == 1
    messages = [e.message for e in store.events(first)]
    assert any(
        m.startswith("resumed from checkpoint-3 (step 3)") and "'other' ignored" in m for m in messages
    )
    assert any("removed unfinished save(s) .tmp-checkpoint-6" in m for m in messages)


def test_preflight_failures_leave_no_run_and_no_lock(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="no complete checkpoint"):
        _begin(out, resume="latest")
    with OutputLock.acquire(out):  # the lock was released; a live holder refuses the next run
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            _begin(out)
    assert RunStore.open().list_runs() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_are_recorded_as_killed_with_the_signal(tmp_path, sig):
    previous = signal.signal(sig, signal.SIG_DFL)  # as in a shell; pytest under nohup ignores SIGHUP
    try:
        _run_and_kill(tmp_path, sig)
    finally:
        signal.signal(sig, previous)


def test_an_ignored_sighup_stays_ignored_under_nohup(tmp_path):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what `nohup rerankctl train ...` sets
    try:
        session = _begin(tmp_path / "out")
        with session.status():
            os.kill(os.getpid(), signal.SIGHUP)  # the terminal closing: the run goes on
        # The body returned normally: the run is still open for the trainer to finish, not killed.
        assert RunStore.open().get_run(session.run_id).status == "running"
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def _run_and_kill(tmp_path, sig):
    session = _begin(tmp_path / "out")
    with pytest.raises(Terminated) as exc, session.status():
        os.kill(os.getpid(), sig)
    assert exc.value.signum == sig
    run = RunStore.open().get_run(session.run_id)
    name = signal.Signals(sig).name
    assert run.status == "killed" and run.error == f"killed by {name}"
    assert f"killed by {name}" in [e.message for e in RunStore.open().events(run.id)]
    assert signal.getsignal(sig) is signal.SIG_DFL  # the handler is gone again
    assert not (tmp_path / "out" / ".rerankctl.lock").exists()


def test_ctrl_c_says_how_to_resume(tmp_path, capsys):
    session = _begin(tmp_path / "out")
    with pytest.raises(Interrupted) as exc, session.status():
        raise KeyboardInterrupt
    line = (
        f"interrupted; to continue this training, run the same command with "
        f"--resume latest --output {tmp_path / 'out'}"
    )
    assert exc.value.message == line and exc.value.printed
    assert capsys.readouterr().err == line + "\n"  # printed once, here: Typer would swallow it
    run = RunStore.open().get_run(session.run_id)
    assert run.status == "killed" and "Ctrl-C" in run.error


def test_the_cli_prints_one_line_and_exits_128_plus_the_signal(monkeypatch, capsys):
    from rerankctl.cli import app as app_module
    from rerankctl.cli.main import main

    def fake_app():
        def run(**kwargs):
            raise Terminated(signal.SIGTERM)

        return run

    monkeypatch.setattr(app_module, "build_app", fake_app)
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 143 and capsys.readouterr().err == "stopped by SIGTERM\n"

    def interrupted_app():
        def run(**kwargs):
            raise Interrupted("interrupted; to continue ...")

        return run

    monkeypatch.setattr(app_module, "build_app", interrupted_app)
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 130 and capsys.readouterr().err == "interrupted; to continue ...\n"
