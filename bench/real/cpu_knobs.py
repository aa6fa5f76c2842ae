"""CPU knobs on SmolLM2-135M, each measured against today's default (issue 20, item 3).

    python bench/real/cpu_knobs.py [--model DIR] [--rounds 3] [--pairs 48] [--skip compile]

Every comparison runs A and B interleaved in one process (this VM's speed drifts by ±10 % between
hours), on the same full-length Debian FAQ prompts as bench/real/quantize_drift.py (length-sorted vs
unsorted batches is bench/data_throughput.py's padding figure, not repeated here):

- **threads**: scoring docs/s at 2 threads (the default: one per core) vs 1 thread, and one full
  fine-tuning step (InfoNCE group of 16 × 128 tokens) at 2 vs 1;
- **torch.compile**: the decoder's forward compiled by inductor (``dynamic=False``, full-length
  128-token prompts, batch 16, so one shape) vs eager; compile time and max |Δ score| reported.

Needs the cache of bench/real/fetch.py and an imported model (bench/real/run.py makes both).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import fetch as fetch_mod  # noqa: E402
from quantize_drift import faq_texts, training_step  # noqa: E402


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _median_pair(a: list[float], b: list[float]) -> str:
    ma, mb = statistics.median(a), statistics.median(b)
    return f"{ma:.2f} vs {mb:.2f} docs/s (ratio {ma / mb:.2f}x; rounds {[round(x, 2) for x in a]} / {[round(x, 2) for x in b]})"


def scoring_threads(model_dir: str, rounds: int, n: int) -> dict:
    import torch

    from rerankctl.models.reranker import Qwen3Reranker

    qs, ans = faq_texts()
    rr = Qwen3Reranker(model_dir, device="cpu", max_length=128, shared_prefix=False)
    fixed = [x for x in rr.encode(qs, ans) if len(x) == 128]  # answers long enough to fill the prompt
    fixed = (fixed * (n // len(fixed) + 1))[:n]
    rr.score_ids(fixed[:16], batch_size=16)  # warm-up
    two, one = [], []
    for _ in range(rounds):
        torch.set_num_threads(2)
        two.append(_rate(lambda: rr.score_ids(fixed, batch_size=16), n))
        torch.set_num_threads(1)
        one.append(_rate(lambda: rr.score_ids(fixed, batch_size=16), n))
    torch.set_num_threads(2)
    return {"scoring 128 tokens, 2 threads vs 1": _median_pair(two, one)}


def training_threads(model_dir: str, rounds: int) -> str:
    import torch

    step = training_step(model_dir, 128, lora=False)
    step()  # warm-up and optimizer state
    two, one = [], []
    for _ in range(rounds):
        torch.set_num_threads(2)
        two.append(_rate(step, 16))
        torch.set_num_threads(1)
        one.append(_rate(step, 16))
    torch.set_num_threads(2)
    return _median_pair(two, one)


def compiled(model_dir: str, rounds: int, n: int) -> dict:
    import torch

    from rerankctl.models.reranker import Qwen3Reranker
    from rerankctl.models.scoring import decoder_and_head

    qs, ans = faq_texts()
    eager = Qwen3Reranker(model_dir, device="cpu", max_length=128, shared_prefix=False)
    comp = Qwen3Reranker(model_dir, device="cpu", max_length=128, shared_prefix=False)
    decoder, _ = decoder_and_head(comp.model)
    decoder.forward = torch.compile(decoder.forward, dynamic=False)
    fixed = [x for x in eager.encode(qs, ans) if len(x) == 128]
    fixed = (fixed * (n // len(fixed) + 1))[: n - n % 16]  # whole batches: one shape, one compile
    start = time.perf_counter()
    ref = eager.score_ids(fixed[:16], batch_size=16, normalize=False)
    got = comp.score_ids(fixed[:16], batch_size=16, normalize=False)
    compile_s = time.perf_counter() - start
    drift = max(abs(a - b) for a, b in zip(ref, got, strict=True))
    e, c = [], []
    for _ in range(rounds):
        e.append(_rate(lambda: eager.score_ids(fixed, batch_size=16), len(fixed)))
        c.append(_rate(lambda: comp.score_ids(fixed, batch_size=16), len(fixed)))
    return {
        "scoring 128 tokens, compiled vs eager": _median_pair(c, e),
        "first batch, eager + compiled (includes the compile) s": round(compile_s, 1),
        "max |score difference| (logits)": drift,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(fetch_mod.CACHE / "smollm2-hf"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=48, help="prompts scored per timed call")
    ap.add_argument("--skip", nargs="*", default=[], choices=["threads", "train", "compile"])
    args = ap.parse_args()
    out: dict = {"model": args.model, "rounds": args.rounds, "pairs": args.pairs}
    t0 = time.perf_counter()
    if "threads" not in args.skip:
        out.update(scoring_threads(args.model, args.rounds, args.pairs))
        print(json.dumps(out, indent=1), flush=True)
    if "train" not in args.skip:
        out["full FT step 16 x 128 tokens, 2 threads vs 1"] = training_threads(args.model, args.rounds)
        print(out["full FT step 16 x 128 tokens, 2 threads vs 1"], flush=True)
    if "compile" not in args.skip:
        out.update(compiled(args.model, args.rounds, args.pairs))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
