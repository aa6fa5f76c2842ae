"""Tokenization + collation throughput of RerankCollator, and padding waste with length grouping.

Runs on ONE core (the process is pinned to one CPU, torch uses one thread, the fast
tokenizer's own thread pool is off) with the real Qwen3 tokenizer (rebuilt offline).
Throughput counts non-pad tokens of the finished batches (``num_tokens``), i.e. what
the trainer receives; tokens/CPU-second is reported beside tokens/wall-second because
the machine may be shared.

Padding waste = padded positions / all positions of ``input_ids``, on a heavy-tailed
length mix, with batches in random order and with :class:`LengthGroupedBatchSampler`
(grouping by the cheap character-length proxy of ``RerankDataset.lengths``).

    python bench/data_throughput.py [--groups 1500] [--batch 16] [--n-docs 8] [--max-length 512]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "an",
    "were",
    "are",
    "which",
    "this",
    "be",
    "or",
    "has",
    "had",
    "not",
    "but",
    "first",
    "one",
    "their",
    "its",
    "new",
    "after",
    "who",
    "they",
    "have",
    "her",
    "she",
    "two",
    "been",
    "other",
    "when",
    "there",
    "all",
    "during",
    "into",
    "school",
    "time",
    "may",
    "years",
    "more",
    "most",
    "only",
    "over",
    "city",
    "some",
    "world",
    "would",
    "where",
    "later",
    "up",
    "such",
    "used",
    "many",
    "can",
    "state",
    "about",
    "national",
    "out",
    "known",
    "university",
    "united",
    "then",
    "made",
    "season",
    "between",
    "both",
    "american",
    "these",
    "under",
    "team",
    "three",
    "film",
    "several",
    "population",
    "government",
    "however",
    "while",
    "including",
    "well",
    "until",
    "area",
    "part",
    "born",
    "became",
    "river",
    "early",
    "war",
    "called",
    "history",
    "music",
    "county",
    "album",
    "series",
    "system",
    "group",
    "major",
    "public",
    "village",
    "since",
    "around",
    "number",
    "each",
    "station",
    "market",
    "energy",
    "protein",
    "theory",
    "language",
    "network",
    "market",
    "design",
    "library",
    "museum",
    "company",
    "founded",
    "district",
    "approximately",
    "Paris",
    "London",
    "1998",
    "2021",
    "3.5",
    "km²",
    "naïve",
    "café",
    "résumé",
    "北京",
    "中国",
    "数据",
    "模型",
]


def sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(max(1, n_words))]
    words[0] = words[0].capitalize()
    out, i = [], 0
    while i < len(words):
        span = rng.randint(6, 18)
        out.append(" ".join(words[i : i + span]) + rng.choice([".", ".", ",", ";", "?"]))
        i += span
    return " ".join(out)


def heavy_tailed_groups(n: int, n_docs: int, seed: int, spread: float | None) -> list[dict]:
    """Groups whose document lengths follow a log-normal (median ~45 words, long tail to 600).

    With a ``spread``, each query draws one length scale and its documents vary by +-spread
    around it (documents of one query usually come from one corpus and one chunker). With
    ``spread=None`` every document draws its own length (the worst case for any batching).
    """
    rng = random.Random(seed)
    groups = []
    for _ in range(n):
        scale = min(600.0, rng.lognormvariate(3.8, 0.9))
        docs = []
        for _ in range(n_docs):
            if spread is None:
                words = min(600.0, rng.lognormvariate(3.8, 0.9))
            else:
                words = scale * rng.uniform(1.0 - spread, 1.0 + spread)
            docs.append(sentence(rng, int(words)))
        groups.append(
            {
                "query": sentence(rng, rng.randint(3, 14)),
                "docs": docs,
                "labels": [1.0] + [0.0] * (n_docs - 1),
                "instruction": None,
                "teacher_scores": None,
            }
        )
    return groups


def run_batches(collator, groups, batches) -> dict:
    tokens = positions = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        out = collator([groups[i] for i in batch])
        tokens += out["num_tokens"]
        positions += out["input_ids"].numel()
    return {
        "tokens": tokens,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "waste": 1.0 - tokens / positions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16, help="groups per batch")
    parser.add_argument("--n-docs", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch

    torch.set_num_threads(1)
    from rerankctl.data.batching import LengthGroupedBatchSampler
    from rerankctl.data.collator import RerankCollator
    from rerankctl.data.rerank_dataset import RerankDataset
    from rerankctl.models.tokenizer import load_qwen3_tokenizer

    tokenizer = load_qwen3_tokenizer()
    collator = RerankCollator(tokenizer, max_length=args.max_length)
    rows, key_times = [], []
    mixes = [
        ("per-query heavy tail, docs +-10%", 0.1),
        ("per-query heavy tail, docs +-20%", 0.2),
        ("per-document heavy tail (worst case)", None),
    ]
    for mix, spread in mixes:
        groups = heavy_tailed_groups(args.groups, args.n_docs, args.seed, spread)
        char_keys = [
            len(g["query"]) + max(len(d) for d in g["docs"]) for g in groups
        ]  # RerankDataset.lengths()
        wall = time.perf_counter()
        token_keys = RerankDataset(groups, n_docs=0, n_pos=0).token_lengths(tokenizer, args.max_length)
        key_seconds = time.perf_counter() - wall
        order = list(range(len(groups)))
        random.Random(args.seed).shuffle(order)
        orders = {
            "random": [order[i : i + args.batch] for i in range(0, len(order), args.batch)],
            "grouped by chars": list(LengthGroupedBatchSampler(char_keys, args.batch, 50, seed=args.seed)),
            "grouped by tokens": list(LengthGroupedBatchSampler(token_keys, args.batch, 50, seed=args.seed)),
        }
        run_batches(collator, groups, orders["random"][:3])  # warm-up
        rows.append((mix, {name: run_batches(collator, groups, batches) for name, batches in orders.items()}))
        key_times.append(key_seconds)

    print("## Data pipeline: tokenization + collation, padding waste\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (pinned to 1), Python {platform.python_version()}, "
        f"torch {torch.__version__}; real Qwen3 tokenizer (offline rebuild). The machine was shared with other jobs "
        "while measured, so tokens per CPU-second is the per-core figure; wall-clock is shown beside it.\n"
    )
    print(
        f"Command: `python {' '.join(sys.argv)}`  ({args.groups} groups x {args.n_docs} docs, "
        f"{args.batch} groups per batch, max_length {args.max_length})\n"
    )
    print("| length mix | batch order | tokens | tokens / CPU-s | tokens / wall-s | padding waste |")
    print("|---|---|---|---|---|---|")
    for mix, results in rows:
        for name, r in results.items():
            print(
                f"| {mix} | {name} | {r['tokens']:,} | {r['tokens'] / r['cpu'] / 1e6:.2f} M | "
                f"{r['tokens'] / r['wall'] / 1e6:.2f} M | {r['waste'] * 100:.1f} % |"
            )
    first = rows[0][1]["random"]
    speed = first["tokens"] / first["cpu"]
    print(
        f"\nThroughput (random order): {speed / 1e6:.2f} M tokens/s per core (target >= 0.3 M): "
        f"{'PASS' if speed >= 0.3e6 else 'FAIL'}"
    )
    for (mix, results), seconds in zip(rows, key_times, strict=True):
        rand, grouped = results["random"]["waste"], results["grouped by tokens"]["waste"]
        print(
            f"Padding waste, {mix}: {grouped * 100:.1f} % grouped by token length vs {rand * 100:.1f} % random "
            f"({rand / max(grouped, 1e-9):.1f}x less; target <= 10 %): {'PASS' if grouped <= 0.10 else 'over'} "
            f"(token-length keys took {seconds:.1f} s wall)"
        )
    print(
        "A group's documents share one padded length, so their own spread is a floor no batch order removes; "
        "the character proxy (RerankDataset.lengths) is cheaper but groups less tightly."
    )


if __name__ == "__main__":
    main()
