"""`rerankctl --help` (and friends) must not import the heavy libraries: a subprocess checks sys.modules.

Each case runs the real entry point in a fresh interpreter, then prints which of the
watched modules ended up imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# The list: importing any of these costs from 0.3 s to several seconds.
FORBIDDEN = ("torch", "transformers", "peft", "datasets", "mteb", "textual", "fastapi")
# Also heavy, and equally unneeded for help and listing runs.
ALSO_WATCHED = ("uvicorn", "accelerate", "matplotlib", "numpy")

PROBE = r"""
import json, sys
from rerankctl.cli.main import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code or 0
watched = json.loads(sys.argv[1])
print("@@" + json.dumps({"code": code, "loaded": [m for m in watched if m in sys.modules]}))
"""


def _probe(args: list[str], home) -> dict:
    env = {**os.environ, "RERANKCTL_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*FORBIDDEN, *ALSO_WATCHED]), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    line = [x for x in proc.stdout.splitlines() if x.startswith("@@")]
    assert line, proc.stderr
    return json.loads(line[-1][2:])


@pytest.mark.parametrize(
    "args",
    [["--help"], ["runs", "--help"], ["runs", "ls"], ["runs", "ls", "--json"], ["runs", "show", "--help"]],
    ids=" ".join,
)
def test_no_heavy_imports(args, tmp_path):
    result = _probe(args, tmp_path / "home")
    assert result["code"] == 0
    forbidden = [m for m in result["loaded"] if m in FORBIDDEN]
    assert forbidden == [], f"`rerankctl {' '.join(args)}` imported {forbidden}"


def test_probe_detects_an_import(tmp_path):
    """The probe itself works: a command that does import a heavy module is caught."""
    result = _probe(["runs", "plot", "--help"], tmp_path / "home")
    assert "torch" not in result["loaded"]
    env = {**os.environ, "RERANKCTL_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-c", "import numpy\n" + PROBE, json.dumps(["numpy"]), "--help"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert json.loads(proc.stdout.splitlines()[-1][2:])["loaded"] == ["numpy"]


def test_also_watched_modules_stay_out_of_help(tmp_path):
    result = _probe(["--help"], tmp_path / "home")
    assert [m for m in result["loaded"] if m in ALSO_WATCHED] == []
