"""int8 score drift and scoring/training speed of SmolLM2-135M (issue 20, "What it must show").

    python bench/real/quantize_drift.py [--model DIR] [--pairs 200] [--speed-pairs 64] [--threads 2]

- drift: the same held-out WordNet pairs (20 first-stage candidates per query) scored by the fp32
  model and by ``--quantize int8`` (rerankctl.models.quantize): max and mean |Δp| of the yes
  probability, Kendall τ of the two score lists over all pairs and per query (mean), and how many
  queries change their top document;
- scoring docs/s at 128 and 256 tokens, fp32 vs int8: Debian FAQ answers cut to exactly that
  length by the prompt tokenizer (so every prompt is full length), batch 16;
- training docs/s at 128 and 256 tokens: forward + backward of one InfoNCE group of 16 such
  prompts (1 positive + 15), LoRA r16 on all linear layers and full fine-tuning, no checkpointing.

Needs the cache of bench/real/fetch.py and the imported model (bench/real/run.py makes both).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import fetch as fetch_mod  # noqa: E402

INSTRUCTION = "Given a definition, retrieve the word it defines"


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def drift(model_dir: str, held_out: Path, n_pairs: int) -> dict:
    from rerankctl.models.reranker import Qwen3Reranker

    rows = [json.loads(x) for x in held_out.open()]
    queries, docs, group = [], [], []
    for qi, r in enumerate(rows):
        if len(queries) >= n_pairs:
            break
        for d in r["docs"]:
            queries.append(r["query"])
            docs.append(d)
            group.append(qi)
    out = {}
    scores = {}
    for mode in ("fp32", "int8"):
        rr = Qwen3Reranker(
            model_dir, device="cpu", max_length=128, instruction=INSTRUCTION,
            quantize="int8" if mode == "int8" else None,
        )  # fmt: skip
        start = time.perf_counter()
        scores[mode] = rr.score_pairs(queries, docs, batch_size=20)
        out[f"{mode}_wordnet_docs_per_s"] = len(docs) / (time.perf_counter() - start)
        del rr
    p32, p8 = scores["fp32"], scores["int8"]
    dp = [abs(a - b) for a, b in zip(p32, p8)]
    per_q, flips = [], 0
    for qi in sorted(set(group)):
        idx = [i for i, g in enumerate(group) if g == qi]
        a, b = [p32[i] for i in idx], [p8[i] for i in idx]
        per_q.append(kendall_tau(a, b))
        flips += max(range(len(a)), key=a.__getitem__) != max(range(len(b)), key=b.__getitem__)
    out.update(
        pairs=len(docs),
        queries=len(per_q),
        max_abs_dp=max(dp),
        mean_abs_dp=sum(dp) / len(dp),
        kendall_tau_all=kendall_tau(p32, p8),
        kendall_tau_per_query_mean=sum(per_q) / len(per_q),
        top1_changed=flips,
    )
    return out


def faq_texts() -> tuple[list[str], list[str]]:
    import tasks

    sections = tasks.read_debian_faq(fetch_mod.fetch()["faq"])
    return [s["question"] for s in sections], [s["answer"] for s in sections]


def scoring_speed(model_dir: str, n: int, length: int, mode: str) -> float:
    from rerankctl.models.reranker import Qwen3Reranker

    qs, ans = faq_texts()
    rr = Qwen3Reranker(
        model_dir, device="cpu", max_length=length, quantize="int8" if mode == "int8" else None
    )
    ids = [x for x in rr.encode(qs, ans) if len(x) == length]  # answers long enough to fill the prompt
    ids = (ids * (n // len(ids) + 1))[:n]
    rr.score_ids(ids[:16], batch_size=16)  # warm-up
    start = time.perf_counter()
    rr.score_ids(ids, batch_size=16)
    return n / (time.perf_counter() - start)


def training_step(model_dir: str, length: int, lora: bool, group: int = 16):
    """One optimizer step of an InfoNCE group of ``group`` full-length FAQ prompts, as a closure.

    The model, optimizer and batch are built once; the first call allocates the optimizer state.
    """
    import torch

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.losses import infonce_loss
    from rerankctl.models.loading import load_causal_lm, load_tokenizer
    from rerankctl.models.scoring import yes_no_scores

    tok = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, dtype=torch.float32, device="cpu")
    if lora:
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=targets))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    prompt = PromptTokenizer(tok, max_length=length)
    qs, ans = faq_texts()
    ids, _ = prompt.encode_pairs(qs, ans, None)
    ids = [x for x in ids if len(x) == length][:group]
    batch = prompt.pad(ids)
    labels = torch.zeros(1, group)
    labels[0, 0] = 1

    def one() -> None:
        s = yes_no_scores(model, batch["input_ids"], batch["attention_mask"], prompt.yes_id, prompt.no_id)
        infonce_loss(s.float().view(1, -1), labels).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return one


def training_speed(model_dir: str, length: int, lora: bool, steps: int = 2, group: int = 16) -> float:
    one = training_step(model_dir, length, lora, group)
    one()  # warm-up (and optimizer state allocation)
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return group * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(fetch_mod.CACHE / "smollm2-hf"))
    ap.add_argument("--held-out", default=str(fetch_mod.CACHE / "tasks" / "wordnet_test.jsonl"))
    ap.add_argument("--pairs", type=int, default=400, help="held-out pairs for the drift (20 per query)")
    ap.add_argument("--speed-pairs", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], choices=["drift", "score", "train"])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    res: dict = {"threads": args.threads, "load_before": os.getloadavg()[0], "torch": torch.__version__}
    if "drift" not in args.skip:
        res["drift"] = drift(args.model, Path(args.held_out), args.pairs)
        print(json.dumps(res["drift"], indent=1), flush=True)
    if "score" not in args.skip:
        for length in (128, 256):
            for mode in ("fp32", "int8"):
                v = scoring_speed(args.model, args.speed_pairs, length, mode)
                res[f"score_{mode}_{length}_docs_per_s"] = v
                print(f"score {mode} {length}: {v:.2f} docs/s", flush=True)
    if "train" not in args.skip:
        for length in (128, 256):
            for lora in (True, False):
                v = training_speed(args.model, length, lora)
                res[f"train_{'lora' if lora else 'full'}_{length}_docs_per_s"] = v
                print(f"train {'LoRA' if lora else 'full'} {length}: {v:.2f} docs/s", flush=True)
    res["load_after"] = os.getloadavg()[0]
    out = fetch_mod.CACHE / "quantize_drift.json"
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
