"""Peak RSS of `train sft` on a file holding one huge document (issue 18: bounded records).

Writes a training file of ``--queries`` ordinary query groups plus one whose positive is a
``--doc-mb`` MB document, runs ``rerankctl train sft`` on it for ``--steps`` steps in a child
process (the built-in tiny Qwen3, fresh RERANKCTL_HOME so the Arrow cache is built from
scratch) and reports the child's peak RSS (``ru_maxrss`` of the waited-for child) and wall time.

    nice -n 10 python bench/huge_record_rss.py                 # 50 MB, the default cap
    nice -n 10 python bench/huge_record_rss.py --max-chars 0   # the same without the cap (slow, big)

Before the cap, a 50 MB document held 11.8 GB with no step done. Target: < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def write_data(path: Path, doc_mb: float, queries: int) -> None:
    words = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
    chunk = " ".join(words) + " "
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(queries):
            record = {"query": f"query {i}", "pos": [f"answer {i} {chunk}"], "neg": [f"other {i}", chunk]}
            handle.write(json.dumps(record) + "\n")
        huge = chunk * int(doc_mb * 1e6 / len(chunk))
        handle.write(json.dumps({"query": "the huge one", "pos": [huge], "neg": ["short", chunk]}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc-mb", type=float, default=50.0)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-chars", type=int, default=None, help="pass --max-chars (default: the default)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="huge-record-") as folder:
        root = Path(folder)
        data = root / "train.jsonl"
        write_data(data, args.doc_mb, args.queries)
        size_mb = data.stat().st_size / 1e6
        cmd = [sys.executable, "-m", "rerankctl", "train", "sft", "--model", "builtin:tiny-qwen3"]
        cmd += ["--data", str(data), "--max-steps", str(args.steps), "--batch-size", "4", "--n-docs", "2"]
        cmd += ["--max-length", "256", "--output", str(root / "out")]
        if args.max_chars is not None:
            cmd += ["--max-chars", str(args.max_chars)]
        env = dict(os.environ, RERANKCTL_HOME=str(root / "home"))
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        finished = (root / "out" / "final").is_dir()
    print(
        f"file {size_mb:.1f} MB (one document of {args.doc_mb:g} MB), {args.steps} steps, max_chars {args.max_chars}"
    )
    print(
        f"exit {proc.returncode}; final/ written: {finished}; wall {wall:.1f} s; peak RSS {peak_mb:,.0f} MB"
    )
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
    from _common import machine

    print(f"machine: {machine()}")
    verdict = "met" if proc.returncode == 0 and finished and peak_mb < 2048 else "NOT met"
    print(f"target peak RSS < 2 GB: {verdict}")


if __name__ == "__main__":
    main()
