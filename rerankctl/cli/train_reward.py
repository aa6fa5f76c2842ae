"""`rerankctl train reward`: a Bradley-Terry reward model (Qwen3 backbone + value head)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rerankctl.cli._config_options import split_csv
from rerankctl.cli._distributed import distributed_options, launch_if_asked

_D = "Data"
_M = "Model and memory"
_L = "Loss"
_O = "Optimisation"
_B = "Bookkeeping"
_E = "Evaluation only"

Opt = Optional


def train_reward(
    preset: Annotated[
        Opt[str],
        typer.Option(help="Preset: qwen3_0.6b_reward, qwen3_1.7b_reward, tiny_reward or a TOML path."),
    ] = None,
    size: Annotated[
        Opt[str], typer.Option(help="Preset size profile: small, medium, large (samples, batch, lr).")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the merged config as TOML and exit.")
    ] = False,
    model: Annotated[
        Opt[str], typer.Option(help="Backbone causal LM: hub id or directory.", rich_help_panel=_M)
    ] = None,
    dataset: Annotated[
        Opt[str],
        typer.Option(help="Preference data file or hub name (Anthropic/hh-rlhf, ...).", rich_help_panel=_D),
    ] = None,
    dataset_format: Annotated[
        Opt[str],
        typer.Option(
            help="Convert local files from: hh-rlhf, stack-exchange-paired, rm-static, helpsteer3, ultrafeedback.",
            rich_help_panel=_D,
        ),
    ] = None,
    eval_dataset: Annotated[
        Opt[str], typer.Option(help="Held-out data (default: 20% of the prompts).", rich_help_panel=_D)
    ] = None,
    eval_split: Annotated[
        Opt[float],
        typer.Option(help="Held-out fraction of prompts without --eval-dataset.", rich_help_panel=_D),
    ] = None,
    frac: Annotated[
        Opt[float], typer.Option(help="Use this random fraction of the data.", rich_help_panel=_D)
    ] = None,
    max_samples: Annotated[
        Opt[int], typer.Option(help="At most this many training pairs.", rich_help_panel=_D)
    ] = None,
    max_length: Annotated[
        Opt[int], typer.Option(help="Prompt + response token limit.", rich_help_panel=_D)
    ] = None,
    skip_invalid: Annotated[
        Opt[bool],
        typer.Option(
            "--skip-invalid", help="Skip malformed records.", rich_help_panel=_D, show_default=False
        ),
    ] = None,
    output: Annotated[
        Opt[str], typer.Option("--output", "-o", help="Output directory.", rich_help_panel=_B)
    ] = None,
    run_name: Annotated[Opt[str], typer.Option(help="Run name in the run store.", rich_help_panel=_B)] = None,
    tag: Annotated[
        Opt[list[str]], typer.Option("--tag", help="Tag the run (repeatable).", rich_help_panel=_B)
    ] = None,
    head: Annotated[Opt[str], typer.Option(help="Value head: linear or mlp.", rich_help_panel=_M)] = None,
    pooling: Annotated[
        Opt[str], typer.Option(help="Pooling: last (last non-pad token) or mean.", rich_help_panel=_M)
    ] = None,
    freeze_layers: Annotated[
        Opt[int], typer.Option(help="Freeze the first N transformer layers.", rich_help_panel=_M)
    ] = None,
    freeze_embeddings: Annotated[
        Opt[bool],
        typer.Option(
            "--freeze-embeddings/--train-embeddings",
            help="Freeze the input embeddings.",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    lora: Annotated[
        Opt[bool],
        typer.Option(
            "--lora/--no-lora",
            help="Train a LoRA adapter on the backbone.",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    lora_r: Annotated[Opt[int], typer.Option(help="LoRA rank.", rich_help_panel=_M)] = None,
    lora_alpha: Annotated[Opt[int], typer.Option(help="LoRA alpha.", rich_help_panel=_M)] = None,
    lora_dropout: Annotated[Opt[float], typer.Option(help="LoRA dropout.", rich_help_panel=_M)] = None,
    target_modules: Annotated[
        Opt[list[str]],
        typer.Option(help="LoRA target modules (comma-separated or repeated).", rich_help_panel=_M),
    ] = None,
    bf16: Annotated[
        Opt[bool],
        typer.Option(
            "--bf16/--no-bf16", help="bf16 mixed precision.", rich_help_panel=_M, show_default=False
        ),
    ] = None,
    gradient_checkpointing: Annotated[
        Opt[bool],
        typer.Option(
            "--gradient-checkpointing/--no-gradient-checkpointing",
            help="Recompute activations to save memory.",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    optim_8bit: Annotated[
        Opt[bool],
        typer.Option(
            "--8bit-optim", help="8-bit AdamW (bitsandbytes + GPU).", rich_help_panel=_M, show_default=False
        ),
    ] = None,
    model_8bit: Annotated[
        Opt[bool],
        typer.Option(
            "--8bit-model",
            help="Load the backbone in 8 bit (bitsandbytes + GPU).",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    attn_implementation: Annotated[
        Opt[str], typer.Option(help="eager, sdpa or flash_attention_2.", rich_help_panel=_M)
    ] = None,
    margin: Annotated[
        Opt[bool],
        typer.Option(
            "--margin/--no-margin",
            help="Use the data's margin column in the loss.",
            rich_help_panel=_L,
            show_default=False,
        ),
    ] = None,
    center_rewards: Annotated[
        Opt[float], typer.Option(help="Reward-centering coefficient (e.g. 0.01).", rich_help_panel=_L)
    ] = None,
    lr: Annotated[Opt[float], typer.Option(help="Peak learning rate.", rich_help_panel=_O)] = None,
    epochs: Annotated[Opt[float], typer.Option(help="Training epochs.", rich_help_panel=_O)] = None,
    max_steps: Annotated[
        Opt[int], typer.Option(help="Stop after N optimizer steps.", rich_help_panel=_O)
    ] = None,
    batch: Annotated[Opt[int], typer.Option(help="Pairs per device per step.", rich_help_panel=_O)] = None,
    eval_batch: Annotated[
        Opt[int], typer.Option(help="Pairs per evaluation batch.", rich_help_panel=_O)
    ] = None,
    grad_accum: Annotated[
        Opt[int], typer.Option(help="Gradient accumulation steps.", rich_help_panel=_O)
    ] = None,
    warmup_ratio: Annotated[
        Opt[float], typer.Option(help="Warmup fraction of the steps.", rich_help_panel=_O)
    ] = None,
    lr_scheduler: Annotated[
        Opt[str], typer.Option(help="linear, cosine, constant, ...", rich_help_panel=_O)
    ] = None,
    weight_decay: Annotated[Opt[float], typer.Option(help="AdamW weight decay.", rich_help_panel=_O)] = None,
    max_grad_norm: Annotated[
        Opt[float], typer.Option(help="Gradient clipping norm.", rich_help_panel=_O)
    ] = None,
    seed: Annotated[Opt[int], typer.Option(help="Random seed.", rich_help_panel=_O)] = None,
    logging_steps: Annotated[Opt[int], typer.Option(help="Log every N steps.", rich_help_panel=_B)] = None,
    eval_steps: Annotated[
        Opt[int], typer.Option(help="Evaluate every N steps (default: each epoch).", rich_help_panel=_B)
    ] = None,
    save_steps: Annotated[
        Opt[int], typer.Option(help="Checkpoint every N steps.", rich_help_panel=_B)
    ] = None,
    save_total_limit: Annotated[
        Opt[int], typer.Option(help="Checkpoints to keep.", rich_help_panel=_B)
    ] = None,
    report_to: Annotated[
        Opt[str], typer.Option(help="none, tensorboard, wandb, ...", rich_help_panel=_B)
    ] = None,
    resume: Annotated[
        Opt[str], typer.Option(help="checkpoint_step_N folder or 'latest'.", rich_help_panel=_B)
    ] = None,
    eval_only: Annotated[
        Opt[bool],
        typer.Option(
            "--eval-only", help="Only evaluate --model-path.", rich_help_panel=_E, show_default=False
        ),
    ] = None,
    model_path: Annotated[
        Opt[str], typer.Option(help="Trained reward model for --eval-only.", rich_help_panel=_E)
    ] = None,
    distributed: dict | None = None,
) -> None:
    """Train a Bradley-Terry reward model: [bold]-log σ(r_chosen − r_rejected − margin)[/].

    Writes [bold]final_model/[/], [bold]best_model_step_N/[/], [bold]checkpoint_step_N/[/] and
    [bold]evaluation_report.json[/] (+ .md, histogram PNG). [bold]--preset tiny_reward[/] runs on a CPU in
    about a minute.
    """
    from rerankctl.cli._config_options import finish_config
    from rerankctl.config.reward import RewardConfig, apply_size

    overrides = {
        "size": size,
        "model": model,
        "dataset": dataset,
        "dataset_format": dataset_format,
        "eval_dataset": eval_dataset,
        "eval_split": eval_split,
        "frac": frac,
        "max_samples": max_samples,
        "max_length": max_length,
        "skip_invalid": skip_invalid,
        "output": output,
        "run_name": run_name,
        "tags": tag,
        "head": head,
        "pooling": pooling,
        "freeze_layers": freeze_layers,
        "freeze_embeddings": freeze_embeddings,
        "lora.enabled": lora,
        "lora.r": lora_r,
        "lora.alpha": lora_alpha,
        "lora.dropout": lora_dropout,
        "lora.target_modules": split_csv(target_modules),
        "bf16": bf16,
        "gradient_checkpointing": gradient_checkpointing,
        "optim_8bit": optim_8bit,
        "model_8bit": model_8bit,
        "attn_implementation": attn_implementation,
        "margin": margin,
        "center_rewards": center_rewards,
        "lr": lr,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch": batch,
        "eval_batch": eval_batch,
        "grad_accum": grad_accum,
        "warmup_ratio": warmup_ratio,
        "lr_scheduler": lr_scheduler,
        "weight_decay": weight_decay,
        "max_grad_norm": max_grad_norm,
        "seed": seed,
        "logging_steps": logging_steps,
        "eval_steps": eval_steps,
        "save_steps": save_steps,
        "save_total_limit": save_total_limit,
        "report_to": report_to,
        "resume": resume,
        "eval_only": eval_only,
        "model_path": model_path,
        **(distributed or {}),
    }
    cfg = finish_config(
        RewardConfig, preset=preset, overrides=overrides, command="train reward", print_config=False
    )
    cfg = apply_size(cfg, overrides)
    if print_config:
        from rerankctl.config.presets import config_to_toml

        typer.echo(config_to_toml(cfg), nl=False)
        raise typer.Exit(0)
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.reward import run_reward
    from rerankctl.train.reward_report import print_reward_summary

    result = run_reward(cfg, console=Console(stderr=True))
    print_reward_summary(result)


def register(train_app: typer.Typer) -> None:
    train_app.command("reward")(distributed_options(train_reward))
