"""Checks that run before torch/transformers load: paths, Hub ids, precision vs device.

A bad path or an unreachable Hub id used to surface after 20-60 s of imports, as transformers'
"Repo id must be in the form 'repo_name'..." or a minute of Hub retry lines. These checks answer in
milliseconds with one line naming the flag and a hint, and since they run before a run is opened,
a failed check leaves no run behind.

- A local-looking reference (``./x``, ``/x``, ``~/x``, ``runs/my-run/final``: anything with two or
  more ``/`` or a data file ending) that does not exist is an error; relative ones are also looked
  up under ``$RERANKCTL_HOME`` (where runs live), so the README's ``runs/my-run/final`` works from
  any directory.
- A Hub id (``org/name``) offline (``HF_HUB_OFFLINE``) must be in the local cache; online, the Hub
  must answer a TCP connect within a few seconds.
- ``--bf16``/``--fp16`` need a CUDA GPU (NVML counts them, torch-free).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from rerankctl.errors import ConfigError

BUILTIN_PREFIX = "builtin:"
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".tsv", ".gz", ".jsonl.gz", ".txt")
_TRUE = ("1", "true", "yes", "on")
_probe_cache: dict[str, bool] = {}


def offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def looks_local(ref: str) -> bool:
    """Whether ``ref`` can only mean a file or directory (a Hub id is ``name`` or ``org/name``)."""
    return (
        ref.startswith(("/", "./", "../", "~", ".\\"))
        or ref in (".", "..")
        or ref.count("/") >= 2
        or "\\" in ref
        or ref.lower().endswith(DATA_SUFFIXES)
    )


def _hf_home() -> Path:
    default = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.environ.get("HF_HOME") or default).expanduser()


def hub_cached(repo_id: str, kind: str = "model") -> bool:
    """Whether a Hugging Face cache holds ``repo_id`` (no import of huggingface_hub or datasets).

    The hub cache (``<kind>s--org--name/snapshots``) and, for datasets, the ``datasets`` library's
    own processed cache (``org___name``), which it reads offline too.
    """
    env_hub = os.environ.get("HF_HUB_CACHE")
    hub = Path(env_hub).expanduser() if env_hub else _hf_home() / "hub"
    folder = hub / f"{kind}s--{repo_id.replace('/', '--')}" / "snapshots"
    if folder.is_dir() and any(folder.iterdir()):
        return True
    if kind == "dataset":
        datasets = Path(os.environ.get("HF_DATASETS_CACHE") or _hf_home() / "datasets").expanduser()
        return (datasets / repo_id.replace("/", "___")).is_dir()
    return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connect to the Hub endpoint (``HF_ENDPOINT``) within ``timeout`` seconds; behind a proxy: True."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # the proxy decides; a direct connect says nothing about it
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if endpoint not in _probe_cache:
        url = urlparse(endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
            _probe_cache[endpoint] = True
        except OSError:
            _probe_cache[endpoint] = False
    return _probe_cache[endpoint]


def _home() -> Path:
    from rerankctl.paths import home

    return Path(home())


def resolve_local(ref: str) -> Path | None:
    """``ref`` as an existing path: as given, else relative to ``$RERANKCTL_HOME``; None if neither exists."""
    path = Path(ref).expanduser()
    if path.exists():
        return path.resolve()
    if not path.is_absolute():
        under_home = _home() / path
        if under_home.exists():
            return under_home.resolve()
    return None


def check_ref(ref: str | None, flag: str, kind: str = "model", *, offline_hint: str = "") -> str | None:
    """``ref`` checked (and a relative path resolved) before anything heavy loads.

    Args:
        ref: the flag's value: a path, a Hub id or a ``builtin:`` name.
        flag: the flag to name in the message (``--model``).
        kind: ``model`` or ``dataset`` (which Hub cache folder to look in).
        offline_hint: extra hint for an offline Hub id (``--tokenizer qwen3 works offline``).
    """
    if not ref or ref.startswith(BUILTIN_PREFIX) or (kind == "resume" and ref == "latest"):
        return ref
    found = resolve_local(ref)
    if found is not None:
        return str(found)
    if looks_local(ref) or kind == "resume":
        where = f" (nor under $RERANKCTL_HOME={_home()})" if not Path(ref).expanduser().is_absolute() else ""
        hint = (
            "check the path; `rerankctl runs ls` lists runs, whose model is RUN_DIR/final"
            if kind == "model"
            else "check the path (relative ones are read from here, then from $RERANKCTL_HOME)"
        )
        raise ConfigError(f"{flag} {ref}: no such file or directory{where}", hint=hint)
    local = "a local directory" if kind == "model" else "a local file"
    if offline():
        if hub_cached(ref, kind):
            return ref
        raise ConfigError(
            f"{flag} {ref}: not a local path, and HF_HUB_OFFLINE is set with no cached copy of this Hub {kind}",
            hint=f"pass {local}{offline_hint}, or unset HF_HUB_OFFLINE to download it",
        )
    if not hub_cached(ref, kind) and not hub_reachable():
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        raise ConfigError(
            f"{flag} {ref}: not a local path, and the Hugging Face Hub ({endpoint}) does not answer",
            hint=f"pass {local}{offline_hint}, set HF_ENDPOINT to a mirror, or check the network/proxy",
        )
    return ref


def check_precision(bf16: bool, fp16: bool, gpus: str | None = None) -> None:
    """bf16/fp16 mixed precision needs a CUDA GPU: say so, with the flag that turns it off."""
    if not (bf16 or fp16):
        return
    flag = "--bf16" if bf16 else "--fp16"
    if gpus and gpus.startswith("cpu:"):
        raise ConfigError(f"{flag} needs CUDA GPUs, not --gpus {gpus}", hint=f"pass --no-{flag[2:]}")
    from rerankctl.gpu.fake import FAKE_ENV
    from rerankctl.gpu.nvml import device_count

    if device_count() == 0 and not os.environ.get(FAKE_ENV):
        raise ConfigError(
            f"{flag} mixed precision needs a CUDA GPU and this machine has none",
            hint=f"pass --no-{flag[2:]} (a preset may turn it on), or use a CPU preset such as tiny, tiny_rl, tiny_reward",
        )
