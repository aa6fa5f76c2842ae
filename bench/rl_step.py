"""RL step time vs SFT step time on the same groups, and the parameter memory of the reference.

Both trainers run on the same LoRA model (the RL setup: SFT weights + a LoRA adapter) and the
same batches (``--queries`` groups of ``--docs`` synth documents). Steps alternate SFT, RL, SFT,
RL, ... so machine load hits both alike; the figure is the ratio of medians.

    OMP_NUM_THREADS=1 python bench/rl_step.py [--hidden 256 --layers 4 --queries 4 --docs 8 --steps 8]

Prints a Markdown snippet for bench/results/rl.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def build(args, tmp: Path):
    import torch
    from transformers import TrainingArguments

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.data.synth import synth_rerank
    from rerankctl.losses import build_loss
    from rerankctl.models.tiny import build_tiny_qwen3
    from rerankctl.train.rl import RLTrainer
    from rerankctl.train.rl_data import RLCollator, RLRerankDataset
    from rerankctl.train.sft import ContrastiveSFTTrainer

    path = build_tiny_qwen3(
        tmp / "model",
        seed=0,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 3,
        num_hidden_layers=args.layers,
        num_attention_heads=max(args.hidden // 64, 2),
        num_key_value_heads=max(args.hidden // 128, 1),
        head_dim=64,
    )
    from rerankctl.config.sft import LoRAConfig
    from rerankctl.models.loading import load_tokenizer
    from rerankctl.models.sft_loading import load_sft_model

    tokenizer = load_tokenizer(path)
    prompt = PromptTokenizer(tokenizer, max_length=args.max_length)
    torch.manual_seed(0)
    model = load_sft_model(str(path), lora=LoRAConfig(r=16, alpha=32, dropout=0.0))
    ds = RLRerankDataset(
        synth_rerank(args.queries * (args.steps + 2), seed=1, split="train"),
        n_docs=args.docs,
        n_pos=1,
        max_docs=args.docs,
    )
    collate = RLCollator(tokenizer, max_length=args.max_length)
    batches = [
        collate([ds[i * args.queries + j] for j in range(args.queries)]) for i in range(args.steps + 2)
    ]

    def targs(name):
        return TrainingArguments(
            output_dir=str(tmp / name),
            report_to="none",
            learning_rate=1e-4,
            max_steps=10,
            remove_unused_columns=False,
            disable_tqdm=True,
        )

    common = dict(
        model=model,
        train_dataset=[],
        processing_class=tokenizer,
        yes_id=prompt.yes_id,
        no_id=prompt.no_id,
        chunk_size=args.chunk_size,
    )
    sft = ContrastiveSFTTrainer(args=targs("sft"), loss_fn=build_loss("infonce"), **common)
    rl = {
        "grpo, KL to reference (kl_coef 0.04)": RLTrainer(
            args=targs("rl1"), loss_type="grpo", kl_coef=0.04, **common
        ),
        "dapo, no reference pass": RLTrainer(
            args=targs("rl2"), loss_type="dapo", log_reference_kl=False, **common
        ),
        "dpo": RLTrainer(args=targs("rl3"), loss_type="dpo", **common),
    }
    for trainer in (sft, *rl.values()):
        trainer.create_optimizer_and_scheduler(num_training_steps=10)
        trainer.current_gradient_accumulation_steps = 1
    return path, model, sft, rl, batches


def timed(trainer, model, batch) -> float:
    start = time.perf_counter()
    trainer.training_step(model, batch)
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()

    import torch

    from rerankctl.models.loading import load_causal_lm
    from rerankctl.models.sft_loading import parameter_bytes

    with tempfile.TemporaryDirectory() as tmp:
        path, model, sft, rl, batches = build(args, Path(tmp))
        times: dict[str, list[float]] = {"sft (infonce)": [], **{k: [] for k in rl}}
        for i, batch in enumerate(batches):
            t_sft = timed(sft, model, batch)
            t_rl = {name: timed(trainer, model, batch) for name, trainer in rl.items()}
            if i >= 2:  # warm-up
                times["sft (infonce)"].append(t_sft)
                for name, t in t_rl.items():
                    times[name].append(t)
        plain = load_causal_lm(str(path), dtype=torch.float32)
        held = parameter_bytes(model)
        base = parameter_bytes(plain)
        with_copy = parameter_bytes(model, copy.deepcopy(plain))

    rows = batches[0]["input_ids"].shape
    base_time = statistics.median(times["sft (infonce)"])
    print(
        f"### RL step vs SFT step ({platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; machine shared with other jobs)\n"
    )
    print(
        f"`python bench/rl_step.py {' '.join(sys.argv[1:])}` — Qwen3 architecture, hidden {args.hidden}, "
        f"{args.layers} layers, real vocabulary; LoRA r=16; {args.queries} queries x {args.docs} docs = "
        f"{rows[0]} rows x {rows[1]} tokens per step; chunk_size {args.chunk_size}; median of "
        f"{len(times['sft (infonce)'])} alternating steps.\n"
    )
    print("| step | median s | ratio to SFT |\n|---|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.3f} | {med / base_time:.2f}x |")
    print("\n| parameter memory | MiB |\n|---|---:|")
    print(f"| SFT model alone | {base / 2**20:.1f} |")
    print(
        f"| RL model: SFT weights + RL adapter; reference = adapter disabled | {held / 2**20:.1f} "
        f"({held / base:.3f}x) |"
    )
    print(f"| if the reference were a copy | {with_copy / 2**20:.1f} ({with_copy / base:.3f}x) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
