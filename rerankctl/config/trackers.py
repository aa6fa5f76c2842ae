"""The experiment trackers ``--report-to`` accepts, checked before torch/transformers load.

Hugging Face's Trainer turns each ``report_to`` name into a callback and fails only when it builds
the Trainer, after 20-60 s of imports, with "TensorBoardCallback requires tensorboard to be
installed". Here an unknown name or a missing package is one line naming the flag and the pip
command, in milliseconds (``importlib.util.find_spec`` looks the package up without importing it).

Four trackers are accepted. tensorboard and mlflow are read back in
tests/integration/test_trackers.py for every trainer; wandb with ``WANDB_MODE=offline`` for
``train sft`` (its offline run file read back). swanlab goes through the same stock callback when
installed (``SWANLAB_MODE=offline``) but no test covers it: its package pins protobuf below the
version tensorboard and mlflow install here.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from rerankctl import paths
from rerankctl.errors import ConfigError

#: name -> (modules any one of which serves it, the pip command that installs one).
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (
        ("tensorboard", "tensorboardX"),
        "pip install 'rerankctl[trackers]' (or: pip install tensorboard)",
    ),
    "mlflow": (("mlflow",), "pip install 'rerankctl[trackers]' (or: pip install mlflow-skinny)"),
    "wandb": (("wandb",), "pip install wandb (offline: WANDB_MODE=offline)"),
    "swanlab": (("swanlab",), "pip install swanlab (offline: SWANLAB_MODE=offline)"),
}

#: The MLFLOW_TRACKING_URI that :func:`default_mlflow_env` put into os.environ (not the user's).
_defaulted_uri: str | None = None

#: MLflow backends that need SQLAlchemy, which mlflow-skinny does not bring.
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_tracker_names(names: list[str]) -> list[str]:
    """``names`` if every one is a tracker of :data:`TRACKERS`; else ValueError with the choices.

    Runs as the field validator of ``report_to``, so a typo is a config error before anything loads.
    """
    import difflib

    for name in names:
        if name not in TRACKERS:
            close = difflib.get_close_matches(name, list(TRACKERS), n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown tracker {name!r}: {guess}choose from {', '.join(TRACKERS)} (or none)")
    return names


def _installed(modules: tuple[str, ...]) -> bool:
    for module in modules:
        try:
            if importlib.util.find_spec(module) is not None:
                return True
        except (ImportError, ValueError):  # a broken half-uninstalled package counts as missing
            continue
    return False


def check_trackers_installed(names: list[str], flag: str = "--report-to") -> None:
    """ConfigError (exit 2) naming the first tracker whose package is missing, with its pip command."""
    for name in names:
        modules, install = TRACKERS.get(name, ((name,), f"pip install {name}"))
        if not _installed(modules):
            raise ConfigError(
                f"{flag} {name} needs the {modules[0]} package, which is not installed", hint=install
            )
    if "mlflow" in names:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
        if scheme in _SQL_SCHEMES and not _installed(("sqlalchemy",)):
            raise ConfigError(
                f"MLFLOW_TRACKING_URI={uri} needs SQLAlchemy, which mlflow-skinny does not install",
                hint="pip install mlflow (the full package), or use a local file store: MLFLOW_TRACKING_URI=file:./mlruns",
            )


def default_mlflow_env(environ: Any = None) -> str:
    """MLflow's tracking URI (default: a file store in ``$RERANKCTL_HOME/mlruns``), set in ``environ``.

    MLflow 3 defaults to ``sqlite:///mlflow.db`` in the current directory, which mlflow-skinny cannot
    open (no SQLAlchemy), and refuses its file backend (in maintenance mode) unless
    ``MLFLOW_ALLOW_FILE_STORE`` is set: set here for file stores only, never over the user's value.
    """
    global _defaulted_uri
    env = os.environ if environ is None else environ
    uri = env.get("MLFLOW_TRACKING_URI") or ""
    # A default set here for an earlier run in this process follows $RERANKCTL_HOME; a user's stays.
    if not uri or (environ is None and uri == _defaulted_uri):
        uri = (paths.home() / "mlruns").resolve().as_uri()
        env["MLFLOW_TRACKING_URI"] = uri
        if environ is None:
            _defaulted_uri = uri
    if (uri.startswith("file:") or "://" not in uri) and "MLFLOW_ALLOW_FILE_STORE" not in env:
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    return uri
