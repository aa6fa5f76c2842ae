"""Peak RSS of `train sft` with default flags (`--chunk-size auto`) on a 30-layer Qwen3 (issue 18).

The issue: `train sft --model SmolLM2-135M --lora --n-docs 8 --max-length 256` (batch 4, no
--chunk-size) was OOM-killed at 22.5 GB on a 24 GB machine. This builds a random Qwen3 of the
same depth and width as SmolLM2-135M (30 layers, hidden 576, 9 heads / 3 KV heads, MLP 1536;
the Qwen3 vocabulary), writes 4 × 8 documents of ~256 tokens per step, runs `rerankctl train sft`
with default flags (LoRA, batch 4, `--chunk-size auto`) in a child process and reports its peak
RSS (ru_maxrss of that child alone, os.wait4) and the plan auto printed. Target: < 8 GB.
With ``--compare N`` a second run with an explicit ``--chunk-size N`` follows (never two at
once: each holds GBs) and the final weights of both are compared: max |Δw|.

    nice -n 10 python bench/auto_chunk_rss.py [--steps 1] [--chunk-size N] [--compare 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--chunk-size", default=None, help="pass an explicit --chunk-size (default: auto)")
    parser.add_argument("--compare", default=None, help="then an explicit --chunk-size run; compare weights")
    parser.add_argument("--timeout", type=float, default=1500)
    args = parser.parse_args()
    from rerankctl.models.tiny import build_tiny_qwen3

    with tempfile.TemporaryDirectory(prefix="auto-chunk-") as folder:
        root = Path(folder)
        model = build_tiny_qwen3(
            root / "model", seed=0, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
            num_attention_heads=9, num_key_value_heads=3, head_dim=64,
        )  # fmt: skip
        words = [
            "the",
            "quick",
            "brown",
            "fox",
            "jumps",
            "over",
            "the",
            "lazy",
            "dog",
            "near",
            "a",
            "river",
            "bank",
            "in",
            "spring",
        ]
        doc = " ".join(words * 16)  # ~230 tokens: with the template every row is cut to 256
        with open(root / "train.jsonl", "w", encoding="utf-8") as handle:
            for i in range(4 * args.steps):
                record = {
                    "query": f"query {i}",
                    "pos": [f"{i} {doc}"],
                    "neg": [f"{i} {j} {doc}" for j in range(7)],
                }
                handle.write(json.dumps(record) + "\n")

        def train(name: str, chunk: str | None) -> tuple[int, float, float, list[str], str]:
            cmd = [sys.executable, "-m", "rerankctl", "train", "sft", "--model", str(model)]
            cmd += ["--data", str(root / "train.jsonl"), "--n-docs", "8", "--max-length", "256"]
            cmd += ["--max-steps", str(args.steps), "--output", str(root / name)]
            if chunk is not None:
                cmd += ["--chunk-size", str(chunk)]
            env = dict(os.environ, RERANKCTL_HOME=str(root / "home"))
            start = time.perf_counter()
            with open(root / f"{name}.log", "w+") as log:
                proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
                deadline = time.time() + args.timeout
                while True:  # wait4 gives this child's own peak RSS
                    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        break
                    if time.time() > deadline:
                        proc.kill()
                        pid, status, usage = os.wait4(proc.pid, 0)
                        break
                    time.sleep(1)
                log.seek(0)
                text = log.read()
            wall = time.perf_counter() - start
            plan = [line.strip() for line in text.splitlines() if "chunk_size auto" in line]
            return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024, plan, text

        runs = {"auto": train("auto", args.chunk_size)}
        if args.compare is not None:
            runs["explicit"] = train("explicit", args.compare)
        delta = None
        if args.compare is not None and all(r[0] == 0 for r in runs.values()):
            from safetensors.torch import load_file

            def weights(name: str) -> dict:
                out = {}
                for f in sorted((root / name / "final").glob("*.safetensors")):
                    out.update(load_file(str(f)))
                return out

            a, b = weights("auto"), weights("explicit")
            assert a and a.keys() == b.keys(), "final weights differ in names"
            delta = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    from _common import machine

    print(f"30 layers x hidden 576, 4 x 8 docs x 256 tokens, {args.steps} step(s)")
    for name, (code, wall, peak_mb, plan, text) in runs.items():
        chunk = args.chunk_size if name == "auto" else args.compare
        print(
            f"{name} (--chunk-size {chunk or 'auto, default'}): exit {code}; wall {wall:.0f} s; peak RSS {peak_mb:,.0f} MB"
        )
        print("  plan:", plan[0] if plan else "(explicit)")
        if code != 0:
            print(text[-2000:])
    if delta is not None:
        print(f"final weights, auto vs --chunk-size {args.compare}: max |dw| = {delta:.3g}")
    print(f"machine: {machine()}")
    code, _, peak_mb, _, _ = runs["auto"]
    print("target peak RSS < 8 GB:", "met" if code == 0 and peak_mb < 8192 else "NOT met")


if __name__ == "__main__":
    main()
