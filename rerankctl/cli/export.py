"""`rerankctl export`: merge LoRA adapters and convert rerankers to sequence classification."""

from __future__ import annotations

import typer

from rerankctl.cli._options import argument

DOC = "Export a trained reranker as a standalone model directory (or import a GGUF model)."

#: The checkpoint, as an argument (the only parameter not in ExportConfig: it is positional).
CHECKPOINT = argument("checkpoint", str, "A training run's final/ or checkpoint-N/ directory.")


def export(cfg, checkpoint: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Merge/convert ``checkpoint`` (or import ``cfg.from_gguf``) into ``cfg.output``."""
    from rerankctl.errors import UsageError

    if cfg.from_gguf is not None:
        if checkpoint is not None or cfg.merge_lora or cfg.to != "causal-lm":
            raise UsageError(
                "--from-gguf takes no checkpoint, --merge-lora or --to",
                hint="rerankctl export --from-gguf FILE.gguf -o DIR",
            )
        if not cfg.from_gguf.lower().endswith(".gguf"):
            raise UsageError(
                f"--from-gguf {cfg.from_gguf}: not a .gguf file", hint="give the path of a .gguf file"
            )
        from rerankctl.models.loading import import_gguf

        path = import_gguf(cfg.from_gguf, cfg.output)
        typer.echo(f"wrote Hugging Face model to {path} (use it as --model {path})")
        return
    if checkpoint is None:
        raise UsageError(
            "missing CHECKPOINT", hint="rerankctl export CHECKPOINT -o DIR --merge-lora, or --from-gguf FILE"
        )
    from rerankctl.config.preflight import check_ref

    # before torch: a missing checkpoint is one line; runs/my-run/final is found from any directory
    checkpoint = check_ref(checkpoint, "CHECKPOINT")
    base_model = check_ref(cfg.base_model, "--base-model") if cfg.base_model is not None else None
    if cfg.to == "causal-lm" and not cfg.merge_lora:
        raise UsageError("nothing to do", hint="add --merge-lora, or --to seq-cls")
    options = {"base_model": base_model, "max_length": cfg.max_length, "instruction": cfg.instruction}
    if cfg.to == "seq-cls":
        from rerankctl.models.export import to_seq_cls

        path = to_seq_cls(checkpoint, cfg.output, **options)
        typer.echo(f"wrote sequence-classification reranker to {path} (score = logit_yes - logit_no)")
        return
    from rerankctl.models.export import merge_lora

    path = merge_lora(checkpoint, cfg.output, **options)
    typer.echo(f"wrote merged model to {path}")


def register(app: typer.Typer) -> None:
    from rerankctl.cli._options import register_config_command
    from rerankctl.config.rerank import ExportConfig

    register_config_command(
        app, "export", ExportConfig, command="export", run=export, doc=DOC, extra=(CHECKPOINT,), ranges=True
    )
