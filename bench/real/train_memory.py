"""Where the training memory of SmolLM2-135M goes (issue 20, item 3), one fresh process per setting.

    python bench/real/train_memory.py [--model DIR] [--rows 16] [--length 128]

Each setting runs in its own process (peak RSS only grows) and reports the resident set after
each stage: imports, model load (fp32 weights), tokenizer, the LoRA wrap, one forward + backward
of a step of ``--rows`` prompts of ``--length`` tokens (the preset's 4 queries x 4 documents at
128 tokens), and the optimizer step (AdamW state). ``peak`` is ``ru_maxrss`` (the high-water
mark: activations are freed after backward, so they show up only there). Settings:

- ``lora``: the preset (LoRA r16 all linear, dropout 0.05), all rows in one forward;
- ``lora-nodrop``: the same with LoRA dropout 0 (peft's dropout keeps a copy of every input);
- ``lora-chunk4``: exact chunked scoring (``chunk_size = 4``, rerankctl.train.chunked);
- ``lora-ckpt``: gradient checkpointing;
- ``full``: full fine-tuning (fp32 AdamW: two moments per weight).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import fetch as fetch_mod  # noqa: E402

SETTINGS = ("lora", "lora-nodrop", "lora-chunk4", "lora-ckpt", "full")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(setting: str, model_dir: str, rows: int, length: int) -> dict:
    out = {"start": rss_mb()}
    import torch

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.losses import infonce_loss
    from rerankctl.models.loading import load_causal_lm, load_tokenizer
    from rerankctl.models.scoring import yes_no_scores
    from rerankctl.train.chunked import chunked_backward

    torch.manual_seed(0)
    out["imports"] = rss_mb()
    model = load_causal_lm(model_dir, dtype=torch.float32, device="cpu")
    out["model"] = rss_mb()
    out["params_M"] = sum(p.numel() for p in model.parameters()) / 1e6
    tok = load_tokenizer(model_dir)
    prompt = PromptTokenizer(tok, max_length=length)
    out["tokenizer"] = rss_mb()
    if setting.startswith("lora"):
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        dropout = 0.0 if setting == "lora-nodrop" else 0.05
        model = get_peft_model(
            model, LoraConfig(r=16, lora_alpha=32, lora_dropout=dropout, target_modules=targets)
        )
    if setting == "lora-ckpt":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    out["wrapped"] = rss_mb()
    params = [p for p in model.parameters() if p.requires_grad]
    out["trainable_M"] = sum(p.numel() for p in params) / 1e6
    opt = torch.optim.AdamW(params, lr=1e-5)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (rows, length - 80), generator=g).tolist()
    seqs, _ = prompt.encode_pairs(["q " * 20] * rows, [tok.decode(x) for x in ids], None)
    batch = prompt.pad(seqs)
    out["tokens"] = int(batch["attention_mask"].sum())
    labels = torch.zeros(rows // 4, 4)
    labels[:, 0] = 1

    def score(i, m):
        return yes_no_scores(model, i, m, prompt.yes_id, prompt.no_id)

    def loss_fn(s):
        return infonce_loss(s.float().view(-1, 4), labels)

    out["before_forward"] = rss_mb()
    out["peak_before_forward"] = peak_mb()
    if setting == "lora-chunk4":
        chunked_backward(score, batch["input_ids"], batch["attention_mask"], loss_fn, 4)
    else:
        loss_fn(score(batch["input_ids"], batch["attention_mask"])).backward()
    out["after_backward"] = rss_mb()
    out["peak_backward"] = peak_mb()
    opt.step()
    out["after_optimizer_step"] = rss_mb()
    out["peak"] = peak_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(fetch_mod.CACHE / "smollm2-hf"))
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.model, args.rows, args.length)))
        return
    results = {}
    for s in args.settings:
        cmd = [sys.executable, __file__, "--child", s, "--model", args.model, "--rows", str(args.rows),
               "--length", str(args.length)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{s} failed:\n{proc.stderr[-2000:]}")
        results[s] = json.loads(line.removeprefix("RESULT "))
        print(s, results[s], flush=True)
    cols = [
        "imports",
        "model",
        "tokenizer",
        "wrapped",
        "peak_backward",
        "after_backward",
        "after_optimizer_step",
        "peak",
    ]
    print(f"\n{args.rows} rows x {args.length} tokens; RSS in MB\n")
    print("| setting | " + " | ".join(cols) + " | activations (peak - before) |")
    print("|---|" + "---:|" * (len(cols) + 1))
    for s, r in results.items():
        # the high-water mark of the step over the resident set before it (if the step set it)
        act = r["peak_backward"] - r["before_forward"] if r["peak_backward"] > r["peak_before_forward"] else 0
        print(f"| {s} | " + " | ".join(f"{r[c]:.0f}" for c in cols) + f" | {act:.0f} |")
    out = fetch_mod.CACHE / "train_memory.json"
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
