"""Benchmark: `rerankctl eval` over HTTP vs mteb's own OpenAI-style rerank wrapper, same server, same run.

    python bench/eval_http.py [--queries 40 --docs 20] [--model DIR]

Starts two real ``rerankctl serve`` processes on loopback (a tiny random Qwen3 by default, so
the server's compute is small and the figures measure the client side: requests, batching,
concurrency), builds one synthetic reranking task (``records_to_mteb_task``), and times:

1. mteb 2's ``mteb.models.openai_wrappers.OpenAIAPIRerankWrapper`` (one pair per request,
   sequential) through ``mteb.evaluate``;
2. our `MTEBRerankEvaluator` with `APIReranker` (batched, concurrent requests; score cache off);
3. two endpoints one after the other (``--model-workers 1``) vs in parallel (``--model-workers 2``).

Prints a Markdown snippet with pairs/s and the ratios (issue 9: >= 10x, and parallel <= 0.6x).
The speed-up over the mteb wrapper is only ever stated on the *same pairs* (the baseline's
``--baseline-queries``); the full workload's rate is printed beside it, not divided by the
baseline's (issue 15: that mixed an 800-pair and a 200-pair rate). A real model (``--backend
torch``, the default) leads; ``--backend sim-gpu`` is a simulation (no model: a fixed sleep per
scored batch) and every line of its output says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Vocabulary of the synthetic queries and documents.
WORDS = (
    "rank", "retrieval", "query", "document", "passage", "model", "score", "relevant", "search", "index",
    "vector", "token", "batch", "river", "mountain", "coffee", "violin", "python", "apple", "bridge", "snow",
    "orchard", "music", "concert", "code", "snake", "water",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# `--backend sim-gpu`: the rerankctl serve app (HTTP layer, batcher) over the no-op backend with a fixed
# sleep per scored batch, standing in for a GPU model whose batch time hardly depends on batch size.
SIM_GPU = (
    "import sys; from rerankctl.serve.app import ServeSettings, create_app; "
    "from rerankctl.serve.backends import NoOpBackend; from rerankctl.serve.runner import bind_socket, serve_forever; "
    "serve_forever(create_app(NoOpBackend('sim-gpu', delay_s=float(sys.argv[2]))), "
    "bind_socket('127.0.0.1', int(sys.argv[1])), log_level='warning')"
)


def start_server(
    model_dir: str, log: Path, backend: str = "torch", delay_ms: float = 10.0
) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    if backend == "sim-gpu":
        cmd = [sys.executable, "-c", SIM_GPU, str(port), str(delay_ms / 1000)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "rerankctl",
            "serve",
            "--model",
            model_dir,
            "--port",
            str(port),
            "--backend",
            backend,
        ]
    if backend == "torch":
        cmd += ["--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: see {log}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"server did not start: see {log}")


def make_records(n_queries: int, n_docs: int, seed: int = 0):
    from rerankctl.data.formats import RerankRecord

    rng = random.Random(seed)
    records = []
    for q in range(n_queries):
        docs = [" ".join(rng.choices(WORDS, k=rng.randint(20, 60))) for _ in range(n_docs)]
        labels = [1.0 if i < 2 else 0.0 for i in range(n_docs)]
        records.append(
            RerankRecord(query=f"query {q}: " + " ".join(rng.choices(WORDS, k=6)), docs=docs, labels=labels)
        )
    return records


def run_mteb_wrapper(url: str, task) -> tuple[float, float]:
    import mteb
    from mteb.models.openai_wrappers import OpenAIAPIRerankWrapper

    wrapper = OpenAIAPIRerankWrapper(url, model_name="tiny", modalities=["text"])
    start = time.perf_counter()
    result = mteb.evaluate(wrapper, task, cache=None, co2_tracker=False, show_progress_bar=False,
                           encode_kwargs={"batch_size": 32, "show_progress_bar": False})  # fmt: skip
    return time.perf_counter() - start, float(result.task_results[0].get_score())


def client(url: str, batch_size: int, concurrency: int):
    from rerankctl.serve.client import APIReranker

    return APIReranker(url, batch_size=batch_size, max_concurrency=concurrency, use_cache=False)


def run_ours(url: str, task, batch_size: int, concurrency: int) -> tuple[float, float]:
    from rerankctl.eval.mteb_runner import MTEBRerankEvaluator

    ev = MTEBRerankEvaluator(client(url, batch_size, concurrency), workers=concurrency)
    start = time.perf_counter()
    score = ev.evaluate(task)
    return time.perf_counter() - start, score.main_score


def run_two(urls: list[str], task, model_workers: int, batch_size: int, concurrency: int) -> float:
    from rerankctl.eval.multi import evaluate_multiple_models

    rerankers = {u: client(u, batch_size, concurrency) for u in urls}
    start = time.perf_counter()
    out = evaluate_multiple_models(rerankers, [task], model_workers=model_workers, workers=concurrency)
    seconds = time.perf_counter() - start
    if out.errors:
        raise SystemExit(f"errors: {out.errors}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--model", default=None, help="model dir (default: a tiny random Qwen3)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--backend",
        choices=("torch", "noop", "sim-gpu"),
        default="torch",
        help="torch: the tiny model scores on the CPU (model time bounds both clients); noop: the real server "
        "and HTTP layer without model work; sim-gpu: noop plus --delay-ms per scored batch (a GPU stand-in)",
    )
    parser.add_argument(
        "--baseline-queries",
        type=int,
        default=10,
        help="queries the one-pair-per-request baseline scores (its pairs/s is flat in the workload size)",
    )
    parser.add_argument("--delay-ms", type=float, default=10.0, help="sim-gpu: milliseconds per scored batch")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from rerankctl.eval.local import records_to_mteb_task

    work = Path(tempfile.mkdtemp(prefix="rerankctl-bench-eval-"))
    model_dir = args.model
    if args.backend in ("noop", "sim-gpu"):
        model_dir = model_dir or "noop"
    elif model_dir is None:
        from rerankctl.models.tiny import build_tiny_qwen3

        model_dir = str(build_tiny_qwen3(work / "tiny", seed=0, tokenizer_cache=str(work / "tok")))
    procs = []
    try:
        (p1, url1), (p2, url2) = (
            start_server(model_dir, work / f"s{i}.log", args.backend, args.delay_ms) for i in (1, 2)
        )
        procs = [p1, p2]
        records = make_records(args.queries, args.docs)
        pairs = sum(len(r.docs) for r in records)
        task = records_to_mteb_task(records, name="BenchReranking")
        task.load_data()
        run_ours(
            url1, records_to_mteb_task(make_records(4, 8, seed=1)), args.batch_size, args.concurrency
        )  # warm-up
        run_ours(url2, records_to_mteb_task(make_records(4, 8, seed=1)), args.batch_size, args.concurrency)

        base_records = records[: args.baseline_queries]
        base_pairs = sum(len(r.docs) for r in base_records)
        t_base, s_base = run_mteb_wrapper(url1, records_to_mteb_task(base_records, name="BenchBaseline"))
        t_ours_small, s_ours_small = run_ours(
            url1, records_to_mteb_task(base_records, name="BenchBaseline"), args.batch_size, args.concurrency
        )
        t_ours, s_ours = run_ours(url1, task, args.batch_size, args.concurrency)
        t_seq = run_two([url1, url2], task, 1, args.batch_size, args.concurrency)
        t_par = run_two([url1, url2], task, 2, args.batch_size, args.concurrency)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)

    import mteb
    import torch

    sim = args.backend == "sim-gpu"
    title = "SIMULATION (no model, a sleep per batch): " if sim else ""
    print(f"## {title}rerankctl eval over HTTP (bench/eval_http.py, --backend {args.backend})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, mteb "
          f"{mteb.__version__}; shared with other jobs, so read the ratios rather than the absolute rates")  # fmt: skip
    delay = f" --delay-ms {args.delay_ms:g}" if args.backend == "sim-gpu" else ""
    print(f"- command: `python bench/eval_http.py --backend {args.backend}{delay} --queries {args.queries} --docs "
          f"{args.docs} --batch-size {args.batch_size} --concurrency {args.concurrency}`")  # fmt: skip
    server = {
        "torch": "tiny random Qwen3 on the CPU, OMP_NUM_THREADS=1",
        "noop": "`--backend noop`: real HTTP layer and batcher, no model work",
        "sim-gpu": f"the serve app over the no-op backend sleeping {args.delay_ms:g} ms per scored batch, a GPU stand-in",
    }[args.backend]
    print(
        f"- workload: {args.queries} queries x {args.docs} docs = {pairs} pairs, one mteb reranking task, "
        f"two `rerankctl serve` processes ({server})"
    )
    print(
        "- baseline: mteb's own `OpenAIAPIRerankWrapper` (mteb.models.openai_wrappers), which sends one "
        "(query, document) pair per `/v1/rerank` request, sequentially\n"
    )
    ours = f"rerankctl eval (APIReranker, batch {args.batch_size}, {args.concurrency} in flight)"
    rows = [
        ("mteb OpenAIAPIRerankWrapper (1 pair/request)", base_pairs, t_base, f"{s_base:.4f}"),
        (f"{ours}, the same pairs", base_pairs, t_ours_small, f"{s_ours_small:.4f}"),
        (ours, pairs, t_ours, f"{s_ours:.4f}"),
        ("two endpoints, one after the other (--model-workers 1)", 2 * pairs, t_seq, ""),
        ("two endpoints in parallel (--model-workers 2)", 2 * pairs, t_par, ""),
    ]
    print("| run | pairs | seconds | pairs/s | MAP@1000 |")
    print("|---|---:|---:|---:|---:|")
    for name, n, secs, score in rows:
        print(f"| {name} | {n} | {secs:.2f} | {n / secs:.0f} | {score} |")
    print()
    label = "simulated " if sim else ""
    print(
        f"- {label}speed-up over the mteb wrapper on the same {base_pairs} pairs: **{t_base / t_ours_small:.1f}x** "
        f"(target >= 10x); the full workload ({pairs} pairs) runs at {pairs / t_ours:.0f} pairs/s, a different "
        "workload, so it is not divided by the baseline's rate"
    )
    print(f"- {label}parallel / sequential time for two endpoints: **{t_par / t_seq:.2f}** (target <= 0.6)")


if __name__ == "__main__":
    main()
