"""`rerankctl tui` is registered and its help loads without importing Textual eagerly."""

from __future__ import annotations

import subprocess
import sys


def test_tui_help_and_lazy_imports():
    res = subprocess.run([sys.executable, "-m", "rerankctl", "tui", "--help"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "--refresh" in res.stdout and "--store" in res.stdout
    code = (
        "import sys, rerankctl.cli.tui; print('textual' in sys.modules, 'rerankctl.tui.app' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
