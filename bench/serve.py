"""Benchmark `rerankctl serve` and the rerank client on CPU with the tiny Qwen3 model (one run).

    python bench/serve.py [--requests 128] [--docs 50] [--out bench/results/serve.md]

Measures, in one run on this machine (each figure the median of ``--rounds`` interleaved rounds):

1. in-process batched scoring (``Qwen3Reranker.score_pairs`` over all documents) in documents/s;
2. the server (a ``rerankctl serve`` child process) at 16 concurrent clients, 50 documents per
   request, in documents/s, and its ratio to (1);
3. dynamic batching against one batch per request (``--no-batching``), at 50 and at 4
   documents per request;
4. p50/p99 request latency at 1 and at 16 clients;
5. client overhead: ``call_rerank_batch`` against a ``--backend noop`` server, 50 documents
   per request, in documents/s (cache off, then cache on).

Every load loop is bounded by a request count and a time limit. Prints a Markdown snippet and
writes it to ``--out``.

``--ab-shared-prefix`` runs only the shared-prefix A/B instead (issue 15): two servers on the same
model (a random-weight Qwen3 shape, hidden 256 x 4 layers, the real tokenizer), ``rerankctl serve``
(shared prefix, the default) and ``rerankctl serve --no-shared-prefix`` (the server before it),
16 clients sending ``--docs``-document requests to each in turn, rounds interleaved with the order
alternating; the scores of one request are checked equal (1e-5) first::

    nice -n 5 timeout 900 python bench/serve.py --ab-shared-prefix --requests 16 --rounds 3 --max-length 256
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

TIME_LIMIT_S = 120.0  # per load phase
WORDS = [
    "the",
    "of",
    "retrieval",
    "ranking",
    "model",
    "query",
    "document",
    "search",
    "neural",
    "network",
    "language",
    "passage",
    "answer",
    "index",
    "dense",
    "sparse",
    "vector",
    "bm25",
    "relevance",
    "score",
]


def make_requests(n: int, docs_per_request: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        query = f"query {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10)))
        docs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120))) for _ in range(docs_per_request)
        ]
        out.append((query, docs))
    return out


async def _load(url: str, requests: list, clients: int, time_limit: float = TIME_LIMIT_S):
    """``clients`` workers send the requests (each once) as fast as answers come; (docs/s, latencies)."""
    import httpx

    queue = list(reversed(requests))
    latencies: list[float] = []
    docs_done = 0
    deadline = time.monotonic() + time_limit

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal docs_done
        while queue and time.monotonic() < deadline:
            query, docs = queue.pop()
            start = time.perf_counter()
            response = await client.post(url + "/v1/rerank", json={"query": query, "documents": docs})
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)
            docs_done += len(docs)

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients)) as client:
        # Warm-up: one request, not counted.
        (
            await client.post(url + "/v1/rerank", json={"query": "warm", "documents": requests[0][1]})
        ).raise_for_status()
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return docs_done / elapsed, latencies, docs_done


def load(server, requests: list, clients: int) -> tuple[float, list[float], float]:
    """(documents/s, latencies, server documents per CPU-second) of one load phase."""
    import psutil

    proc = psutil.Process(server.proc.pid)

    def cpu() -> float:
        times = proc.cpu_times()
        return times.user + times.system

    before = cpu()
    # The server's CPU time includes the one warm-up request: a bias against the server of ~1%.
    rate, latencies, docs = asyncio.run(_load(server.url, requests, clients))
    return rate, latencies, docs / max(cpu() - before, 1e-9)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def in_process_scorer(model_dir: str, max_length: int, threads: int):
    """A function measuring in-process scoring of some requests: (docs/s all at once, docs/s one call per
    request, documents per CPU-second of the first)."""
    import torch

    from rerankctl.models.reranker import Qwen3Reranker

    torch.set_num_threads(threads)
    reranker = Qwen3Reranker(model_dir, device="cpu", max_length=max_length)

    def measure(requests: list) -> tuple[float, float, float]:
        queries = [q for q, docs in requests for _ in docs]
        docs = [d for _, ds in requests for d in ds]
        reranker.score_pairs(queries[:64], docs[:64], batch_size=64)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        reranker.score_pairs(queries, docs, batch_size=64)
        all_at_once = len(docs) / (time.perf_counter() - start)
        per_cpu = len(docs) / (time.process_time() - cpu)
        start = time.perf_counter()
        for q, ds in requests:
            reranker.score_pairs([q] * len(ds), ds, batch_size=64)
        per_request = len(docs) / (time.perf_counter() - start)
        return all_at_once, per_request, per_cpu

    return measure


def client_overhead(url: str, n_items: int, docs_per_request: int, use_cache: bool, cache_dir: str):
    """(documents/s, documents per client CPU-second) of call_rerank_batch."""
    from rerankctl.serve.client import APIReranker, call_rerank_batch

    items = [
        (f"q{i}", [f"document {i}.{j} with a few words" for j in range(docs_per_request)])
        for i in range(n_items)
    ]
    client = APIReranker(
        url, batch_size=docs_per_request, max_concurrency=16, use_cache=use_cache, cache_dir=cache_dir
    )
    call_rerank_batch(items[:20], client, show_progress=False)  # warm-up (other queries than the timed ones)
    timed = [(f"timed {q}", docs) for q, docs in items]
    start, cpu = time.perf_counter(), time.process_time()
    call_rerank_batch(timed, client, show_progress=False)
    docs = n_items * docs_per_request
    return docs / (time.perf_counter() - start), docs / (time.process_time() - cpu)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load1 = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Python {platform.python_version()}; load average {load1:.1f} at start"
    )


AB_SHAPE = dict(
    hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
    num_key_value_heads=2, head_dim=64,
)  # fmt: skip


def _scores(url: str, query: str, docs: list[str]) -> list[float]:
    import httpx

    body = {"query": query, "documents": docs, "top_n": len(docs), "return_documents": False}
    results = httpx.post(f"{url}/rerank", json=body, timeout=120).json()["results"]
    return [r["relevance_score"] for r in sorted(results, key=lambda r: r["index"])]


def shared_prefix_ab(args) -> None:
    """serve (shared prefix) vs serve --no-shared-prefix, same model, interleaved rounds."""
    from rerankctl.models.tiny import build_tiny_qwen3
    from rerankctl.serve.runner import ServerProcess

    info = machine()
    work = Path(tempfile.mkdtemp(prefix="rerankctl-bench-serve-ab-"))
    model_dir = str(build_tiny_qwen3(work / "qwen3-256x4", seed=0, **AB_SHAPE))
    requests = make_requests(args.requests, args.docs, seed=1)
    common = ["--model", model_dir, "--max-length", str(args.max_length), "--log-level", "warning"]
    common += ["--cpu-threads", str(args.threads), "--dtype", "fp32"]
    rates: dict[str, list[float]] = {"shared": [], "unshared": []}
    with ServerProcess(common) as shared, ServerProcess([*common, "--no-shared-prefix"]) as unshared:
        servers = {"shared": shared, "unshared": unshared}
        query, docs = requests[0]
        a, b = _scores(shared.url, query, docs), _scores(unshared.url, query, docs)
        diff = max(abs(x - y) for x, y in zip(a, b))
        assert diff <= 1e-5, f"shared-prefix server scores differ by {diff:.2e}"
        for name in servers:  # warm-up
            load(servers[name], requests[:2], 2)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr)
            for name in ("shared", "unshared") if r % 2 == 0 else ("unshared", "shared"):
                rates[name].append(load(servers[name], requests, 16)[0])
    med = {k: statistics.median(v) for k, v in rates.items()}
    text = "\n".join(
        [
            "## Serve: shared prefix vs `--no-shared-prefix` (`bench/serve.py --ab-shared-prefix`)",
            "",
            f"Machine: {info}; shared/loaded, every figure the median of {args.rounds} interleaved rounds.",
            f"Command: `python bench/serve.py --ab-shared-prefix --requests {args.requests} --rounds {args.rounds}"
            f" --docs {args.docs} --max-length {args.max_length} --threads {args.threads}` (random-weight Qwen3,"
            " hidden 256 x 4 layers, real Qwen3 tokenizer, fp32; documents of 20-120 words; 16 clients).",
            f"Scores of one {args.docs}-document request equal on both servers (max |diff| {diff:.1e}).",
            "",
            "| server | docs/s (median) | per round |",
            "|---|---:|---|",
            *(
                f"| `serve{'' if k == 'shared' else ' --no-shared-prefix'}` | {med[k]:,.1f} | "
                + ", ".join(f"{x:,.1f}" for x in rates[k])
                + " |"
                for k in ("unshared", "shared")
            ),
            f"| **shared / unshared** | **{med['shared'] / med['unshared']:.2f}x** | "
            + ", ".join(f"{x / y:.2f}x" for x, y in zip(rates["shared"], rates["unshared"]))
            + " |",
        ]
    )
    print(text)
    out = Path(args.out).with_name("serve_shared_prefix.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48, help="requests per 16-client phase")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are medians")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads, in-process and in the servers"
    )
    parser.add_argument("--docs", type=int, default=50, help="documents per request")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve.md"))
    parser.add_argument(
        "--ab-shared-prefix", action="store_true", help="only serve vs serve --no-shared-prefix (see above)"
    )
    args = parser.parse_args()
    if args.ab_shared_prefix:
        shared_prefix_ab(args)
        return

    from rerankctl.models.tiny import build_tiny_qwen3
    from rerankctl.serve.runner import ServerProcess

    info = machine()
    work = Path(tempfile.mkdtemp(prefix="rerankctl-bench-serve-"))
    model_dir = str(build_tiny_qwen3(work / "tiny-qwen3", seed=0))
    requests = make_requests(args.requests, args.docs, seed=1)
    small = make_requests(args.requests * 4, 4, seed=2)
    single = make_requests(min(20, args.requests), args.docs, seed=3)
    rounds: dict[str, list[float]] = {}
    lat16: list[float] = []
    lat1: list[float] = []

    def note(key: str, value: float) -> None:
        rounds.setdefault(key, []).append(value)

    measure_in_process = in_process_scorer(model_dir, args.max_length, args.threads)
    common = [
        "--model",
        model_dir,
        "--max-length",
        str(args.max_length),
        "--log-level",
        "warning",
        "--cpu-threads",
        str(args.threads),
    ]
    # All servers up at once and every configuration measured once per round, rounds interleaved: the
    # machine's load drifts by minutes, so each figure is the median of its rounds.
    with ServerProcess(common) as batched, ServerProcess([*common, "--no-batching"]) as unbatched:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr)
            inproc = measure_in_process(requests)
            for key, value in zip(("inproc_all", "inproc_per_request", "inproc_cpu"), inproc):
                note(key, value)
            rate, lat, cpu = load(batched, requests, 16)
            note("srv16", rate)
            note("srv16_cpu", cpu)
            lat16 += lat
            note("nobatch16", load(unbatched, requests, 16)[0])
            note("srv16_small", load(batched, small, 16)[0])
            note("nobatch16_small", load(unbatched, small, 16)[0])
            lat1 += load(batched, single, 1)[1]
    print("client overhead (noop backend) ...", file=sys.stderr)
    with ServerProcess(["--model", "noop", "--backend", "noop", "--log-level", "warning"]) as server:
        for _ in range(args.rounds):
            rate, cpu = client_overhead(server.url, 400, 50, False, str(work / "cache"))
            note("client_nocache", rate)
            note("client_nocache_cpu", cpu)
            rate, cpu = client_overhead(
                server.url, 400, 50, True, str(work / f"cache-{len(rounds['client_nocache'])}")
            )
            note("client_cache", rate)
            note("client_cache_cpu", cpu)
    figures = {key: statistics.median(values) for key, values in rounds.items()}

    ratio = figures["srv16"] / figures["inproc_all"]
    lines = [
        "## Serving (`bench/serve.py`)",
        "",
        f"Machine: {info}. Shared with other jobs while measured, so absolute figures are noisy;",
        f"every figure is the median of {args.rounds} interleaved rounds and the ratios compare medians of one run.",
        "",
        f"Command: `python bench/serve.py --requests {args.requests} --rounds {args.rounds} --docs {args.docs}"
        f" --max-length {args.max_length}"
        f" --threads {args.threads}` (tiny random Qwen3: hidden 64, 2 layers, real Qwen3 tokenizer; documents of"
        f" 20-120 words; torch limited to {args.threads} CPU thread(s) in-process and in the server, because on a"
        " machine this busy two OpenMP threads spin and run ~10x slower).",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| In-process `score_pairs`, all {len(requests) * args.docs} documents at once (batch 64) | "
        f"{figures['inproc_all']:,.0f} docs/s |",
        f"| In-process `score_pairs`, one call per request of {args.docs} | {figures['inproc_per_request']:,.0f} docs/s |",
        f"| Server, 16 clients, {args.docs} docs/request, dynamic batching | {figures['srv16']:,.0f} docs/s |",
        f"| **Server / in-process (target >= 0.8)** | **{ratio:.2f}x** |",
        f"| Documents per CPU-second: server process / in-process | {figures['srv16_cpu']:,.0f} / "
        f"{figures['inproc_cpu']:,.0f} = {figures['srv16_cpu'] / figures['inproc_cpu']:.2f}x |",
        f"| Server, 16 clients, {args.docs} docs/request, one batch per request | {figures['nobatch16']:,.0f} docs/s |",
        f"| Dynamic batching / one batch per request, {args.docs} docs/request | "
        f"{figures['srv16'] / figures['nobatch16']:.2f}x |",
        f"| Server, 16 clients, 4 docs/request: dynamic batching / one batch per request | "
        f"{figures['srv16_small']:,.0f} / {figures['nobatch16_small']:,.0f} docs/s = "
        f"{figures['srv16_small'] / figures['nobatch16_small']:.2f}x |",
        f"| Latency, 1 client, {args.docs} docs: p50 / p99 | {pct(lat1, 50) * 1000:.0f} / {pct(lat1, 99) * 1000:.0f} ms |",
        f"| Latency, 16 clients, {args.docs} docs: p50 / p99 | {pct(lat16, 50) * 1000:.0f} / "
        f"{pct(lat16, 99) * 1000:.0f} ms |",
        f"| Client overhead vs `--backend noop`, 50 docs/request, 16 in flight, cache off (target >= 5,000) | "
        f"**{figures['client_nocache']:,.0f} docs/s** |",
        f"| Same with the SQLite score cache on | {figures['client_cache']:,.0f} docs/s |",
        f"| Client CPU cost: documents per client CPU-second, cache off / on | "
        f"{figures['client_nocache_cpu']:,.0f} / {figures['client_cache_cpu']:,.0f} |",
        "",
        f"Mean latency at 16 clients: {statistics.mean(lat16) * 1000:.0f} ms over {len(lat16)} requests; "
        f"at 1 client: {statistics.mean(lat1) * 1000:.0f} ms over {len(lat1)} requests.",
        "Per round, server / in-process: "
        + ", ".join(f"{a / b:.2f}x" for a, b in zip(rounds["srv16"], rounds["inproc_all"]))
        + f"; dynamic batching / one batch per request ({args.docs} docs): "
        + ", ".join(f"{a / b:.2f}x" for a, b in zip(rounds["srv16"], rounds["nobatch16"]))
        + "; (4 docs): "
        + ", ".join(f"{a / b:.2f}x" for a, b in zip(rounds["srv16_small"], rounds["nobatch16_small"]))
        + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
