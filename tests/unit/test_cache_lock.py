"""build_once: concurrent callers build a shared cache exactly once and never see it half-written."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

from rerankctl.cache import build_once


def _ready(target: Path) -> bool:
    return (target / "done").is_file()


def _slow_build(target: Path) -> None:
    with open(target.parent / "builds.log", "a") as log:
        log.write("build\n")
    time.sleep(0.5)  # widen the window in which a second worker would also start building
    target.mkdir()
    (target / "done").write_text("ok")


def _worker(target: str, out: str) -> None:
    path = build_once(Path(target), _ready, _slow_build)
    Path(out).write_text(str(_ready(path)))


def test_two_processes_build_once(tmp_path):
    target = tmp_path / "cache" / "model"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(target), str(tmp_path / f"r{i}"))) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert (tmp_path / "cache" / "builds.log").read_text() == "build\n"
    assert all((tmp_path / f"r{i}").read_text() == "True" for i in range(3))


def test_a_ready_cache_is_not_rebuilt(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "done").write_text("ok")
    calls = []
    assert build_once(target, _ready, calls.append) == target
    assert calls == []
