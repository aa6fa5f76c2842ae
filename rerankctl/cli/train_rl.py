"""`rerankctl train rl`: GRPO / DAPO / Dr.GRPO / DPO on top of an SFT reranker."""

from __future__ import annotations

from typing import Annotated

import typer

from rerankctl.cli._config_options import finish_config, split_csv
from rerankctl.cli._distributed import distributed_options, launch_if_asked

_G = "Groups and data"
_R = "RL objective"
_M = "Model and memory"
_O = "Optimisation"
_B = "Bookkeeping"


def train_rl(
    preset: Annotated[
        str | None, typer.Option(help="Preset name (tiny_rl, qwen3_0.6b_rl_dapo, ...) or TOML path.")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the merged config as TOML and exit.")
    ] = False,
    sft_model: Annotated[
        str | None,
        typer.Option(
            help="SFT result to start from: final/ of `train sft` (model or adapter).", rich_help_panel=_M
        ),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option(help="Base model of an SFT adapter (default: from the adapter).", rich_help_panel=_M),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Training data: JSONL/Parquet/CSV.", rich_help_panel=_G)
    ] = None,
    eval_data: Annotated[
        str | None, typer.Option(help="Held-out data for NDCG@10 during training.", rich_help_panel=_G)
    ] = None,
    streaming: Annotated[
        bool | None,
        typer.Option(
            "--streaming/--no-streaming",
            help="Stream the JSONL data.",
            rich_help_panel=_G,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output directory.", rich_help_panel=_B)
    ] = None,
    run_name: Annotated[
        str | None, typer.Option(help="Run name in the run store.", rich_help_panel=_B)
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag the run (repeatable).", rich_help_panel=_B)
    ] = None,
    instruction: Annotated[
        str | None, typer.Option(help="Instruction for records without one.", rich_help_panel=_G)
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="Prompt token limit.", rich_help_panel=_G)] = None,
    n_docs: Annotated[
        int | None,
        typer.Option(help="Documents per group (0 = all, capped by --max-docs).", rich_help_panel=_G),
    ] = None,
    n_pos: Annotated[
        int | None, typer.Option(help="Positives per group (0 = the data's ratio).", rich_help_panel=_G)
    ] = None,
    max_docs: Annotated[int | None, typer.Option(help="Cap when --n-docs 0.", rich_help_panel=_G)] = None,
    sampling: Annotated[
        str | None, typer.Option(help="Negative sampling: hard, random, mixed.", rich_help_panel=_G)
    ] = None,
    filter_overlength: Annotated[
        bool | None,
        typer.Option(
            "--filter-overlength/--truncate",
            help="Drop over-long docs instead of truncating.",
            rich_help_panel=_G,
            show_default=False,
        ),
    ] = None,
    loss_type: Annotated[
        str | None, typer.Option(help="grpo, dapo, dr_grpo, reinforce, dpo.", rich_help_panel=_R)
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="plackett-luce (rankings) or pointwise (yes/no per document).", rich_help_panel=_R),
    ] = None,
    reward_type: Annotated[
        str | None,
        typer.Option(
            help="rank_based, ndcg_based, recall_based, score_based (pointwise).", rich_help_panel=_R
        ),
    ] = None,
    reward_k: Annotated[
        int | None, typer.Option(help="Cut-off of the NDCG / recall reward.", rich_help_panel=_R)
    ] = None,
    scale_rewards: Annotated[
        str | None,
        typer.Option(help="Advantage scale: group, batch, none (default by loss).", rich_help_panel=_R),
    ] = None,
    num_iterations: Annotated[
        int | None,
        typer.Option(help="Optimisation passes over each stored rollout (mu).", rich_help_panel=_R),
    ] = None,
    steps_per_rollout: Annotated[
        int | None, typer.Option(help="Optimizer steps per pass over a rollout.", rich_help_panel=_R)
    ] = None,
    num_samples: Annotated[
        int | None, typer.Option(help="Rankings sampled per query (GRPO group).", rich_help_panel=_R)
    ] = None,
    credit: Annotated[
        str | None, typer.Option(help="reward_to_go (default) or ranking.", rich_help_panel=_R)
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help="Policy temperature: Plackett-Luce(scores / T).", rich_help_panel=_R),
    ] = None,
    kl_coef: Annotated[
        float | None, typer.Option(help="KL penalty to the SFT model (k3).", rich_help_panel=_R)
    ] = None,
    log_reference_kl: Annotated[
        bool | None,
        typer.Option(
            "--log-reference-kl/--no-log-reference-kl",
            help="Log the KL to the SFT model even at --kl-coef 0 (one no-grad pass per step).",
            rich_help_panel=_R,
            show_default=False,
        ),
    ] = None,
    kl_kind: Annotated[str | None, typer.Option(help="k3, k1, k2.", rich_help_panel=_R)] = None,
    clip_eps: Annotated[float | None, typer.Option(help="PPO clip range.", rich_help_panel=_R)] = None,
    clip_eps_high: Annotated[
        float | None, typer.Option(help="DAPO upper clip (clip-higher).", rich_help_panel=_R)
    ] = None,
    dynamic_sampling: Annotated[
        bool | None,
        typer.Option(
            "--dynamic-sampling/--no-dynamic-sampling",
            help="DAPO: replace groups whose samples tie in reward with fresh ones.",
            rich_help_panel=_R,
            show_default=False,
        ),
    ] = None,
    dynamic_sampling_max_draws: Annotated[
        int | None, typer.Option(help="DAPO refill: extra batches scored at most.", rich_help_panel=_R)
    ] = None,
    dpo_reference_free: Annotated[
        bool | None,
        typer.Option(
            "--dpo-reference-free/--dpo-with-reference",
            help="DPO without the reference model.",
            rich_help_panel=_R,
            show_default=False,
        ),
    ] = None,
    dpo_beta: Annotated[float | None, typer.Option(help="DPO beta.", rich_help_panel=_R)] = None,
    dpo_loss_type: Annotated[str | None, typer.Option(help="sigmoid, ipo.", rich_help_panel=_R)] = None,
    dpo_max_pairs: Annotated[
        int | None, typer.Option(help="Preference pairs per group (DPO).", rich_help_panel=_R)
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(help="Docs per autograd pass (0 = all). Exact gradients.", rich_help_panel=_M),
    ] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        typer.Option(
            "--gradient-checkpointing/--no-gradient-checkpointing", rich_help_panel=_M, show_default=False
        ),
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="RL LoRA rank.", rich_help_panel=_M)] = None,
    lora_alpha: Annotated[int | None, typer.Option(help="RL LoRA alpha.", rich_help_panel=_M)] = None,
    lora_dropout: Annotated[float | None, typer.Option(help="RL LoRA dropout.", rich_help_panel=_M)] = None,
    target_modules: Annotated[
        list[str] | None,
        typer.Option(help="LoRA target modules (comma-separated or repeated).", rich_help_panel=_M),
    ] = None,
    attn_implementation: Annotated[
        str | None, typer.Option(help="sdpa, eager, flash_attention_2.", rich_help_panel=_M)
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", "--learning-rate", help="Peak learning rate.", rich_help_panel=_O),
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs.", rich_help_panel=_O)] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps (overrides --epochs).", rich_help_panel=_O)
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Query groups per device per step.", rich_help_panel=_O)
    ] = None,
    grad_accum: Annotated[
        int | None, typer.Option("--grad-accum", help="Gradient accumulation steps.", rich_help_panel=_O)
    ] = None,
    lr_scheduler: Annotated[
        str | None, typer.Option(help="linear, cosine, constant_with_warmup, ...", rich_help_panel=_O)
    ] = None,
    warmup_ratio: Annotated[float | None, typer.Option(help="Warm-up fraction.", rich_help_panel=_O)] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="AdamW weight decay.", rich_help_panel=_O)
    ] = None,
    max_grad_norm: Annotated[
        float | None, typer.Option(help="Clip norm (0 = off).", rich_help_panel=_O)
    ] = None,
    optim: Annotated[
        str | None, typer.Option(help="adamw_torch, adamw_bnb_8bit, ...", rich_help_panel=_O)
    ] = None,
    bf16: Annotated[
        bool | None, typer.Option("--bf16/--no-bf16", rich_help_panel=_O, show_default=False)
    ] = None,
    fp16: Annotated[
        bool | None, typer.Option("--fp16/--no-fp16", rich_help_panel=_O, show_default=False)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", rich_help_panel=_O)] = None,
    logging_steps: Annotated[int | None, typer.Option(help="Log every N steps.", rich_help_panel=_B)] = None,
    eval_steps: Annotated[
        int | None, typer.Option(help="Evaluate every N steps (0 = per epoch).", rich_help_panel=_B)
    ] = None,
    save_steps: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (0 = per epoch).", rich_help_panel=_B)
    ] = None,
    save_total_limit: Annotated[
        int | None, typer.Option(help="Checkpoints to keep.", rich_help_panel=_B)
    ] = None,
    eval_max_queries: Annotated[
        int | None, typer.Option(help="Held-out queries to evaluate on.", rich_help_panel=_B)
    ] = None,
    report_to: Annotated[
        list[str] | None,
        typer.Option(help="wandb, tensorboard, mlflow, swanlab (repeatable).", rich_help_panel=_B),
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Checkpoint dir or 'latest'.", rich_help_panel=_B)
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="DataLoader workers.", rich_help_panel=_B)
    ] = None,
    distributed: dict | None = None,
) -> None:
    """RL after SFT: GRPO, DAPO, Dr.GRPO, REINFORCE or DPO for a yes/no reranker (ranking or yes/no policy).

    [bold]rerankctl train rl --preset tiny_rl --sft-model RUN/final[/] continues a `train sft --preset tiny` run.
    """
    from rerankctl.config.rl import RLConfig

    overrides = {
        "sft_model": sft_model,
        "base_model": base_model,
        "data": data,
        "eval_data": eval_data,
        "streaming": streaming,
        "output": output,
        "run_name": run_name,
        "tags": tag,
        "instruction": instruction,
        "max_length": max_length,
        "n_docs": n_docs,
        "n_pos": n_pos,
        "max_docs": max_docs,
        "sampling": sampling,
        "filter_overlength": filter_overlength,
        "loss_type": loss_type,
        "policy": policy,
        "reward_type": reward_type,
        "reward_k": reward_k,
        "scale_rewards": scale_rewards,
        "num_iterations": num_iterations,
        "steps_per_rollout": steps_per_rollout,
        "dynamic_sampling_max_draws": dynamic_sampling_max_draws,
        "dpo_reference_free": dpo_reference_free,
        "num_samples": num_samples,
        "credit": credit,
        "temperature": temperature,
        "kl_coef": kl_coef,
        "kl_kind": kl_kind,
        "log_reference_kl": log_reference_kl,
        "clip_eps": clip_eps,
        "clip_eps_high": clip_eps_high,
        "dapo_dynamic_sampling": dynamic_sampling,
        "dpo_beta": dpo_beta,
        "dpo_loss_type": dpo_loss_type,
        "dpo_max_pairs": dpo_max_pairs,
        "chunk_size": chunk_size,
        "gradient_checkpointing": gradient_checkpointing,
        "lora.r": lora_r,
        "lora.alpha": lora_alpha,
        "lora.dropout": lora_dropout,
        "lora.target_modules": split_csv(target_modules),
        "attn_implementation": attn_implementation,
        "learning_rate": lr,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "gradient_accumulation_steps": grad_accum,
        "lr_scheduler": lr_scheduler,
        "warmup_ratio": warmup_ratio,
        "weight_decay": weight_decay,
        "max_grad_norm": max_grad_norm,
        "optim": optim,
        "bf16": bf16,
        "fp16": fp16,
        "seed": seed,
        "logging_steps": logging_steps,
        "eval_steps": eval_steps,
        "save_steps": save_steps,
        "save_total_limit": save_total_limit,
        "eval_max_queries": eval_max_queries,
        "report_to": report_to,
        "resume": resume,
        "dataloader_workers": workers,
        **(distributed or {}),
    }
    cfg = finish_config(
        RLConfig, preset=preset, overrides=overrides, command="train rl", print_config=print_config
    )
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.rl_runner import run_rl

    result = run_rl(cfg, console=Console(stderr=True))
    _print_summary(result, Console())


def _print_summary(result, console) -> None:
    """Held-out metrics of the SFT model (before RL) and after RL, then where the model went."""
    from rich.table import Table

    if result.final:
        table = Table(title="held-out ranking quality", title_justify="left")
        for name, justify in (
            ("metric", "left"),
            ("SFT", "right"),
            ("after RL", "right"),
            ("change", "right"),
        ):
            table.add_column(name, justify=justify)
        for key in ("ndcg@10", "ndcg@5", "ndcg@1", "mrr", "map"):
            if key in result.final:
                before, after = result.baseline.get(key), result.final[key]
                table.add_row(
                    key,
                    "-" if before is None else f"{before:.4f}",
                    f"{after:.4f}",
                    "" if before is None else f"{after - before:+.4f}",
                )
        console.print(table)
    console.print(
        f"run [bold]{result.run_id or '-'}[/]: {result.global_step} steps in {result.train_seconds:.1f}s; "
        f"model saved to [bold]{result.final_dir}[/]"
    )


def register(train_app: typer.Typer) -> None:
    train_app.command("rl")(distributed_options(train_rl))
