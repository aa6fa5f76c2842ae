"""Shared fixtures: an isolated rerankctl home, the offline Qwen3 tokenizer, tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never reach the Hugging Face Hub from tests, even on a machine that could.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def rerankctl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RERANKCTL_HOME, so no test touches the user's run store."""
    home = tmp_path / "rerankctl-home"
    monkeypatch.setenv("RERANKCTL_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-session cache for artefacts that are slow to build (tokenizer, tiny models)."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture(scope="session")
def qwen3_tokenizer_path(shared_cache: Path) -> Path:
    """The real Qwen3 tokenizer rebuilt offline (built once per session, ~6 s)."""
    from rerankctl.models.tokenizer import qwen3_tokenizer_dir

    return qwen3_tokenizer_dir(shared_cache / "tokenizers")


@pytest.fixture(scope="session")
def qwen3_tokenizer(qwen3_tokenizer_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen3_tokenizer_path), padding_side="left")


@pytest.fixture(scope="session")
def tiny_vl_path(shared_cache: Path) -> Path:
    """A tiny random Qwen2-VL (text hidden 64, 2 layers, 1 vision block) with the Qwen3 tokenizer, on disk."""
    from rerankctl.models.vl_reward import TINY_VL_VERSION, build_tiny_qwen2vl

    target = shared_cache / f"tiny-qwen2vl-v{TINY_VL_VERSION}"
    if not (target / "config.json").is_file():
        build_tiny_qwen2vl(target, seed=0, tokenizer_cache=str(shared_cache / "tokenizers"))
    return target


@pytest.fixture(scope="session")
def tiny_qwen3_path(shared_cache: Path, qwen3_tokenizer_path: Path) -> Path:
    """A tiny random Qwen3 causal LM (hidden 64, 2 layers) with the Qwen3 tokenizer, on disk."""
    from rerankctl.models.tiny import build_tiny_qwen3

    return build_tiny_qwen3(
        shared_cache / "tiny-qwen3", seed=0, tokenizer_cache=str(shared_cache / "tokenizers")
    )
