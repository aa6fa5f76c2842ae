"""Helpers the test modules import (tests/ is on sys.path: pytest puts conftest.py's folder there)."""

from __future__ import annotations

import pytest


def main_exit(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``rerankctl ARGV`` through the real entry point (its error handling and exit codes).

    Returns ``(exit code, stdout, stderr)``; a run that returns normally counts as exit 0.
    """
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err
