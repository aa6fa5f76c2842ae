"""Fixtures of the dashboard tests (helpers live in tui_fixtures.py, importable by name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_fixtures import build_store


@pytest.fixture
def demo_store(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The deterministic store of tui_fixtures.py; returns (path, {run name: run id})."""
    path = tmp_path / "runs.db"
    return path, build_store(path)
