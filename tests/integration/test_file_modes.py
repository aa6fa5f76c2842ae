"""Files written by `data synth` and `data convert` get the umask's mode (0644 under 022), not 0600."""

from __future__ import annotations

import json
import os
import stat

import pytest

from rerankctl.cli.main import main


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_synth_and_convert_write_0644(tmp_path, umask_022, capsys):
    synth = tmp_path / "synth.jsonl"
    assert _run(["data", "synth", "--kind", "rerank", "-n", "5", "-o", str(synth)]) == 0
    assert _mode(synth) == 0o644
    src = tmp_path / "hh.jsonl"
    src.write_text(
        json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant: b"})
        + "\n"
    )
    converted = tmp_path / "pref.jsonl"
    assert _run(["data", "convert", str(src), "--from", "hh-rlhf", "--output", str(converted)]) == 0
    assert _mode(converted) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hh.jsonl",
        "pref.jsonl",
        "synth.jsonl",
    ]  # no temp left


def test_a_stricter_umask_is_followed_too(tmp_path, capsys):
    old = os.umask(0o077)
    try:
        out = tmp_path / "synth.jsonl"
        assert _run(["data", "synth", "--kind", "rerank", "-n", "3", "-o", str(out)]) == 0
    finally:
        os.umask(old)
    assert _mode(out) == 0o600
