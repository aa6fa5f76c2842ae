"""Where rerankctl keeps its files.

Everything lives under one home directory: ``$RERANKCTL_HOME`` when set (the
global ``--home`` option sets it), else ``$XDG_DATA_HOME/rerankctl``, else
``~/.local/share/rerankctl``.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "RERANKCTL_HOME"


def home() -> Path:
    """The rerankctl home directory (not created)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "rerankctl"


def store_path() -> Path:
    """The SQLite run store file."""
    return home() / "runs.db"


def cache_dir(name: str = "") -> Path:
    """A cache directory under the home (tokenizers, score caches, tiny models)."""
    path = home() / "cache"
    return path / name if name else path


def runs_dir() -> Path:
    """Default parent of training output directories when ``--output`` is not given."""
    return home() / "runs"
