"""`rerankctl train sft`: fine-tune a Qwen3 yes/no reranker with a listwise loss."""

from __future__ import annotations

from typing import Annotated

import typer

from rerankctl.cli._config_options import finish_config, split_csv
from rerankctl.cli._distributed import distributed_options, launch_if_asked

_G = "Groups and data"
_L = "Loss"
_M = "Model and memory"
_O = "Optimisation"
_B = "Bookkeeping"


def train_sft(
    preset: Annotated[
        str | None, typer.Option(help="Preset name (tiny, qwen3_4b_lora, ...) or TOML path.")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the merged config as TOML and exit.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Base model: hub id or directory.", rich_help_panel=_M)
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Training data: JSONL/Parquet/CSV.", rich_help_panel=_G)
    ] = None,
    eval_data: Annotated[
        str | None, typer.Option(help="Held-out data for NDCG@10 during training.", rich_help_panel=_G)
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
        str | None,
        typer.Option(
            help="lambdaloss, listmle, plistmle, listnet, infonce, ranknet, bce, ce, margin_mse, kl.",
            rich_help_panel=_L,
        ),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Temperature (infonce, listnet, kl).", rich_help_panel=_L)
    ] = None,
    infonce_mode: Annotated[
        str | None, typer.Option(help="single, positive_set, per_positive.", rich_help_panel=_L)
    ] = None,
    lambda_metric: Annotated[str | None, typer.Option(help="ndcg, map, mrr.", rich_help_panel=_L)] = None,
    lambda_weighting: Annotated[
        str | None,
        typer.Option(help="none, ndcgloss1, ndcgloss2, lambdarank, ndcgloss2pp.", rich_help_panel=_L),
    ] = None,
    lambda_k: Annotated[
        int | None, typer.Option(help="Truncation k of the LambdaLoss metric.", rich_help_panel=_L)
    ] = None,
    lambda_sigma: Annotated[
        float | None, typer.Option(help="Sigma of LambdaLoss/RankNet.", rich_help_panel=_L)
    ] = None,
    lambda_mu: Annotated[float | None, typer.Option(help="mu of NDCGLoss2++.", rich_help_panel=_L)] = None,
    ranknet_max_pairs: Annotated[
        int | None, typer.Option(help="Pairs sampled per group (RankNet).", rich_help_panel=_L)
    ] = None,
    bce_pos_weight: Annotated[
        float | None, typer.Option(help="Positive weight of pointwise BCE.", rich_help_panel=_L)
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
    lora: Annotated[
        bool | None,
        typer.Option(
            "--lora/--full", help="LoRA adapter or full fine-tuning.", rich_help_panel=_M, show_default=False
        ),
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank.", rich_help_panel=_M)] = None,
    lora_alpha: Annotated[int | None, typer.Option(help="LoRA alpha.", rich_help_panel=_M)] = None,
    lora_dropout: Annotated[float | None, typer.Option(help="LoRA dropout.", rich_help_panel=_M)] = None,
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
    """Fine-tune a Qwen3 yes/no reranker on query groups with a listwise loss.

    [bold]rerankctl train sft --preset tiny[/] trains a tiny model on built-in data in ~2 minutes on a CPU.
    """
    from rerankctl.config.sft import SFTConfig

    overrides = {
        "model": model,
        "data": data,
        "eval_data": eval_data,
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
        "temperature": temperature,
        "infonce_mode": infonce_mode,
        "lambda_metric": lambda_metric,
        "lambda_weighting": lambda_weighting,
        "lambda_k": lambda_k,
        "lambda_sigma": lambda_sigma,
        "lambda_mu": lambda_mu,
        "ranknet_max_pairs": ranknet_max_pairs,
        "bce_pos_weight": bce_pos_weight,
        "chunk_size": chunk_size,
        "gradient_checkpointing": gradient_checkpointing,
        "lora.enabled": lora,
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
        SFTConfig, preset=preset, overrides=overrides, command="train sft", print_config=print_config
    )
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.sft_runner import is_main_process, run_sft
    from rerankctl.train.summary import print_sft_summary

    result = run_sft(cfg, console=Console(stderr=True))
    if is_main_process():
        print_sft_summary(result, console=Console())


def register(train_app: typer.Typer) -> None:
    train_app.command("sft")(distributed_options(train_sft))
