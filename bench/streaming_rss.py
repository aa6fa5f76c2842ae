"""Peak RSS of StreamingRerankDataset on a 10 MB and a 1 GB JSONL file.

Each measurement runs in a fresh child process that imports the library, iterates
the whole file (every group sampled, as in training) and reports its peak RSS
(``ru_maxrss``). The claim: peak RSS grows by at most 100 MB from the small to the
big file (the reader holds one line, not the file). The files are generated in /tmp
and deleted afterwards.

    python bench/streaming_rss.py [--big-mb 1024] [--small-mb 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import resource, sys, time
from rerankctl.data.streaming import StreamingRerankDataset
ds = StreamingRerankDataset(sys.argv[1], n_docs=8, n_pos=1, strategy="hard", rank=0, world_size=1)
t = time.time(); n = 0; docs = 0
for group in ds:
    n += 1; docs += len(group["docs"])
print(n, docs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.time() - t)
"""

WORDS = [
    "red",
    "blue",
    "green",
    "wooden",
    "metal",
    "chair",
    "table",
    "lamp",
    "outdoor",
    "kitchen",
    "office",
    "garden",
    "bench",
    "shelf",
    "desk",
    "stool",
]


def make_file(path: str, target_bytes: int, seed: int = 0) -> int:
    """Rerank JSONL records (1 positive, 15 scored negatives, ~1.3 KB each) up to ``target_bytes``.

    5,000 distinct records are generated and then cycled: the reader's memory does not
    depend on whether lines repeat, and cycling makes a 1 GB file in seconds.
    """
    rng = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    block = []
    for _ in range(5000):
        rec = {
            "query": text(6),
            "pos": [text(20)],
            "neg": [text(rng.randint(5, 25)) for _ in range(15)],
            "pos_scores": [1.0],
            "neg_scores": [round(rng.random(), 3) for _ in range(15)],
        }
        block.append(json.dumps(rec) + "\n")
    written = lines = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target_bytes:
            line = block[lines % len(block)]
            handle.write(line)
            written += len(line)
            lines += 1
    return lines


def measure(path: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=True
    ).stdout.split()
    groups, docs, maxrss_kb, seconds = int(out[0]), int(out[1]), int(out[2]), float(out[3])
    return {"groups": groups, "docs": docs, "peak_rss_mb": maxrss_kb / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=float, default=10)
    parser.add_argument("--big-mb", type=float, default=1024)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="rerankctl-rss-", dir="/tmp")
    results = {}
    try:
        for name, mb in (("small", args.small_mb), ("big", args.big_mb)):
            path = os.path.join(folder, f"{name}.jsonl")
            t = time.time()
            lines = make_file(path, int(mb * 1024 * 1024))
            size = os.path.getsize(path) / 1024 / 1024
            print(
                f"generated {path}: {size:.1f} MB, {lines} lines in {time.time() - t:.0f} s", file=sys.stderr
            )
            results[name] = {"size_mb": size, **measure(path)}
            os.unlink(path)
    finally:
        for entry in os.listdir(folder):
            os.unlink(os.path.join(folder, entry))
        os.rmdir(folder)
    small, big = results["small"], results["big"]
    growth = big["peak_rss_mb"] - small["peak_rss_mb"]
    print("## StreamingRerankDataset peak RSS\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "shared with other jobs while measured (timings are indicative only; RSS is not affected).\n"
    )
    print("Command: `python bench/streaming_rss.py`\n")
    print("| file | size | groups | docs sampled | peak RSS | read time |")
    print("|---|---|---|---|---|---|")
    for name in ("small", "big"):
        r = results[name]
        print(
            f"| {name} | {r['size_mb']:.1f} MB | {r['groups']} | {r['docs']} | {r['peak_rss_mb']:.1f} MB | {r['seconds']:.1f} s |"
        )
    ratio = big["size_mb"] / small["size_mb"]
    verdict = "PASS" if growth <= 100 else "FAIL"
    print(f"\nPeak RSS growth for a {ratio:.0f}x larger file: {growth:+.1f} MB (limit +100 MB): {verdict}")


if __name__ == "__main__":
    main()
