"""Failures before any work starts (bad flags, paths, endpoints) leave no run in the store; a
second live training into the same --output is refused naming the pid that holds it."""

from __future__ import annotations

import socket

import pytest

from rerankctl.cli.main import main
from rerankctl.store import RunStore


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0, capsys.readouterr().err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_eval_against_a_refused_endpoint_leaves_no_run(capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    code, err = _run(["eval", "--endpoints", url, "--datasets", "MockRerankingTask"], capsys)
    assert code == 1 and url in err
    assert RunStore.open().list_runs() == []


@pytest.fixture
def small_data(tmp_path):
    from rerankctl.data.io import write_jsonl
    from rerankctl.data.synth import synth_rerank

    path = tmp_path / "small.jsonl"
    write_jsonl(path, synth_rerank(12, seed=0))
    return str(path)


def test_sft_and_rl_with_nothing_to_resume_leave_no_run(tmp_path, tiny_qwen3_path, small_data, capsys):
    empty = tmp_path / "empty"
    code, err = _run(
        ["train", "sft", "--preset", "tiny", "--model", str(tiny_qwen3_path), "-o", str(empty),
         "--data", small_data, "--resume", "latest", "--max-steps", "1"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "no complete checkpoint-N" in err and err.count("\n") == 1
    code, err = _run(
        ["train", "rl", "--preset", "tiny_rl", "--sft-model", str(tiny_qwen3_path), "-o", str(empty),
         "--data", small_data, "--resume", str(tmp_path / "nowhere"), "--max-steps", "1"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "not a checkpoint folder" in err
    assert RunStore.open().list_runs() == []
    assert not (empty / ".rerankctl.lock").exists()


def test_a_second_training_into_a_locked_output_is_refused(tmp_path, tiny_qwen3_path, small_data, capsys):
    import os

    from rerankctl.train.output_lock import OutputLock

    out = tmp_path / "busy"
    with OutputLock.acquire(out):  # stands for a live training (same host, this pid)
        code, err = _run(
            ["train", "sft", "--preset", "tiny", "--model", str(tiny_qwen3_path), "-o", str(out),
             "--data", small_data, "--max-steps", "1"],
            capsys,
        )  # fmt: skip
    assert code == 2 and f"in use by a running training (pid {os.getpid()})" in err
    assert RunStore.open().list_runs() == []
