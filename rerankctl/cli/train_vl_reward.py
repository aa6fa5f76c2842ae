"""`rerankctl train vl-reward`: a Qwen2-VL / Qwen2.5-VL reward model with an MLP score head."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rerankctl.cli._distributed import distributed_options, launch_if_asked

_D = "Data"
_M = "Model and memory"
_L = "Loss"
_O = "Optimisation"
_E = "Evaluation, checkpoints, early stopping"
_R = "Runs and resume"
_T = "Test only"

Opt = Optional


def train_vl_reward(
    preset: Annotated[
        Opt[str], typer.Option(help="Preset: qwen2vl_2b_reward, tiny_vl_reward or a TOML path.")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the merged config as TOML and exit.")
    ] = False,
    model: Annotated[
        Opt[str], typer.Option(help="Qwen2-VL / Qwen2.5-VL hub id or directory.", rich_help_panel=_M)
    ] = None,
    score_min: Annotated[Opt[float], typer.Option(help="Lowest score.", rich_help_panel=_M)] = None,
    score_max: Annotated[Opt[float], typer.Option(help="Highest score.", rich_help_panel=_M)] = None,
    min_pixels: Annotated[
        Opt[int], typer.Option(help="Upscale images below this many pixels.", rich_help_panel=_M)
    ] = None,
    max_pixels: Annotated[
        Opt[int], typer.Option(help="Downscale images above this many pixels.", rich_help_panel=_M)
    ] = None,
    max_length: Annotated[
        Opt[int], typer.Option(help="Token limit (image + text).", rich_help_panel=_M)
    ] = None,
    flash_attention: Annotated[
        Opt[bool],
        typer.Option(
            "--flash-attention/--no-flash-attention",
            help="flash_attention_2 when available.",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    freeze_vision: Annotated[
        Opt[bool],
        typer.Option(
            "--freeze-vision/--train-vision",
            help="Freeze the vision tower.",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    gradient_checkpointing: Annotated[
        Opt[bool],
        typer.Option(
            "--gradient-checkpointing/--no-gradient-checkpointing",
            help="Recompute activations.",
            rich_help_panel=_M,
            show_default=False,
        ),
    ] = None,
    bf16: Annotated[
        Opt[bool],
        typer.Option(
            "--bf16/--no-bf16", help="bf16 mixed precision.", rich_help_panel=_M, show_default=False
        ),
    ] = None,
    train_data: Annotated[
        Opt[str],
        typer.Option(
            help="Training JSONL {id, query, image, response[2], human_ranking}.", rich_help_panel=_D
        ),
    ] = None,
    val_data: Annotated[
        Opt[str], typer.Option(help="Validation JSONL (default: 20% of training).", rich_help_panel=_D)
    ] = None,
    test_data: Annotated[
        Opt[str], typer.Option(help="Test JSONL, scored to JSONL after training.", rich_help_panel=_D)
    ] = None,
    skip_invalid: Annotated[
        Opt[bool],
        typer.Option(
            "--skip-invalid", help="Skip malformed records.", rich_help_panel=_D, show_default=False
        ),
    ] = None,
    loss: Annotated[Opt[str], typer.Option(help="bradley_terry or margin.", rich_help_panel=_L)] = None,
    margin: Annotated[Opt[float], typer.Option(help="Margin of the margin loss.", rich_help_panel=_L)] = None,
    lr: Annotated[Opt[float], typer.Option(help="Peak learning rate.", rich_help_panel=_O)] = None,
    weight_decay: Annotated[Opt[float], typer.Option(help="AdamW weight decay.", rich_help_panel=_O)] = None,
    warmup_ratio: Annotated[
        Opt[float], typer.Option(help="Warmup fraction of the steps.", rich_help_panel=_O)
    ] = None,
    lr_scheduler: Annotated[
        Opt[str], typer.Option(help="cosine, linear, constant, ...", rich_help_panel=_O)
    ] = None,
    max_grad_norm: Annotated[
        Opt[float], typer.Option(help="Gradient clipping norm.", rich_help_panel=_O)
    ] = None,
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
    seed: Annotated[Opt[int], typer.Option(help="Random seed.", rich_help_panel=_O)] = None,
    eval_steps: Annotated[Opt[int], typer.Option(help="Evaluate every N steps.", rich_help_panel=_E)] = None,
    save_steps: Annotated[
        Opt[int], typer.Option(help="Checkpoint every N steps.", rich_help_panel=_E)
    ] = None,
    save_total_limit: Annotated[
        Opt[int], typer.Option(help="Checkpoints kept (older ones removed).", rich_help_panel=_E)
    ] = None,
    early_stopping_patience: Annotated[
        Opt[int], typer.Option(help="Stop after N evaluations without improvement.", rich_help_panel=_E)
    ] = None,
    logging_steps: Annotated[Opt[int], typer.Option(help="Log every N steps.", rich_help_panel=_E)] = None,
    log_samples: Annotated[
        Opt[int], typer.Option(help="Scored validation pairs logged as run events.", rich_help_panel=_E)
    ] = None,
    report_to: Annotated[
        Opt[str], typer.Option(help="none, tensorboard, wandb, ...", rich_help_panel=_E)
    ] = None,
    output_dir: Annotated[
        Opt[str], typer.Option("--output-dir", "-o", help="Parent of run directories.", rich_help_panel=_R)
    ] = None,
    experiment_name: Annotated[
        Opt[str], typer.Option(help="Run dirs are <experiment>_<timestamp>.", rich_help_panel=_R)
    ] = None,
    run_name: Annotated[Opt[str], typer.Option(help="Run name in the run store.", rich_help_panel=_R)] = None,
    tag: Annotated[
        Opt[list[str]], typer.Option("--tag", help="Tag the run (repeatable).", rich_help_panel=_R)
    ] = None,
    resume: Annotated[
        Opt[str], typer.Option(help="checkpoint_step_N folder or 'latest'.", rich_help_panel=_R)
    ] = None,
    load_weights_only: Annotated[
        Opt[bool],
        typer.Option(
            "--load-weights-only",
            help="Resume weights only (fresh optimizer and schedule).",
            rich_help_panel=_R,
            show_default=False,
        ),
    ] = None,
    test_only: Annotated[
        Opt[bool],
        typer.Option(
            "--test-only",
            help="Score --test-data with --model-path; no training.",
            rich_help_panel=_T,
            show_default=False,
        ),
    ] = None,
    model_path: Annotated[
        Opt[str], typer.Option(help="Trained VL reward model for --test-only.", rich_help_panel=_T)
    ] = None,
    test_output: Annotated[
        Opt[str], typer.Option(help="JSONL file for the test scores.", rich_help_panel=_T)
    ] = None,
    distributed: dict | None = None,
) -> None:
    """Train a vision-language reward model (Qwen2-VL + MLP head, scores from --score-min to --score-max).

    [bold]--preset tiny_vl_reward[/] runs on a CPU with built-in synthetic images.
    """
    from rerankctl.cli._config_options import finish_config
    from rerankctl.config.vl_reward import VLRewardConfig

    overrides = {
        "model": model,
        "score_min": score_min,
        "score_max": score_max,
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "max_length": max_length,
        "flash_attention": flash_attention,
        "freeze_vision": freeze_vision,
        "gradient_checkpointing": gradient_checkpointing,
        "bf16": bf16,
        "train_data": train_data,
        "val_data": val_data,
        "test_data": test_data,
        "skip_invalid": skip_invalid,
        "loss": loss,
        "margin": margin,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup_ratio": warmup_ratio,
        "lr_scheduler": lr_scheduler,
        "max_grad_norm": max_grad_norm,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch": batch,
        "eval_batch": eval_batch,
        "grad_accum": grad_accum,
        "seed": seed,
        "eval_steps": eval_steps,
        "save_steps": save_steps,
        "save_total_limit": save_total_limit,
        "early_stopping_patience": early_stopping_patience,
        "logging_steps": logging_steps,
        "log_samples": log_samples,
        "report_to": report_to,
        "output_dir": output_dir,
        "experiment_name": experiment_name,
        "run_name": run_name,
        "tags": tag,
        "resume": resume,
        "load_weights_only": load_weights_only,
        "test_only": test_only,
        "model_path": model_path,
        "test_output": test_output,
        **(distributed or {}),
    }
    cfg = finish_config(
        VLRewardConfig,
        preset=preset,
        overrides=overrides,
        command="train vl-reward",
        print_config=print_config,
    )
    if cfg.load_weights_only and not cfg.resume:
        from rerankctl.errors import UsageError

        raise UsageError(
            "--load-weights-only needs --resume", hint="pass --resume checkpoint_step_N (or latest)"
        )
    launch_if_asked(cfg)
    from rich.console import Console

    from rerankctl.train.vl_reward import run_vl_reward, summary_lines

    result = run_vl_reward(cfg, console=Console(stderr=True))
    for line in summary_lines(result):
        typer.echo(line)


def register(train_app: typer.Typer) -> None:
    train_app.command("vl-reward")(distributed_options(train_vl_reward))
