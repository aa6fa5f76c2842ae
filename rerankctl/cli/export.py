"""`rerankctl export`: merge LoRA adapters and convert rerankers to sequence classification."""

from __future__ import annotations

from typing import Annotated

import typer


def export(
    checkpoint: Annotated[
        str | None, typer.Argument(help="A training run's final/ or checkpoint-N/ directory.")
    ] = None,
    *,
    output: Annotated[str, typer.Option("--output", "-o", help="Directory to write.")],
    merge_lora: Annotated[
        bool, typer.Option("--merge-lora", help="Merge the LoRA adapter into the base weights.")
    ] = False,
    to: Annotated[
        str, typer.Option("--to", help="causal-lm (default) or seq-cls (vLLM/TEI/Infinity/CrossEncoder).")
    ] = "causal-lm",
    base_model: Annotated[
        str | None, typer.Option(help="Base model, when the adapter's recorded path moved.")
    ] = None,
    from_gguf: Annotated[
        str | None,
        typer.Option(
            "--from-gguf",
            help="Import a GGUF file (dequantised to fp32) as a plain Hugging Face model directory.",
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(
            help="Token limit written into the export (default: the training run's max_length, else 512)."
        ),
    ] = None,
    instruction: Annotated[
        str | None, typer.Option(help="Default instruction of the export's chat template (seq-cls).")
    ] = None,
) -> None:
    """Export a trained reranker as a standalone model directory (or import a GGUF model)."""
    from rerankctl.errors import UsageError

    if from_gguf is not None:
        if checkpoint is not None or merge_lora or to != "causal-lm":
            raise UsageError(
                "--from-gguf takes no checkpoint, --merge-lora or --to",
                hint="rerankctl export --from-gguf FILE.gguf -o DIR",
            )
        if not from_gguf.lower().endswith(".gguf"):
            raise UsageError(
                f"--from-gguf {from_gguf}: not a .gguf file", hint="give the path of a .gguf file"
            )
        from rerankctl.models.loading import import_gguf

        path = import_gguf(from_gguf, output)
        typer.echo(f"wrote Hugging Face model to {path} (use it as --model {path})")
        return
    if checkpoint is None:
        raise UsageError(
            "missing CHECKPOINT", hint="rerankctl export CHECKPOINT -o DIR --merge-lora, or --from-gguf FILE"
        )

    if to not in ("causal-lm", "seq-cls"):
        raise UsageError(f"--to {to}: unknown target", hint="use causal-lm or seq-cls")
    from rerankctl.config.preflight import check_ref

    # before torch: a missing checkpoint is one line; runs/my-run/final is found from any directory
    checkpoint = check_ref(checkpoint, "CHECKPOINT")
    if base_model is not None:
        base_model = check_ref(base_model, "--base-model")
    if max_length is not None and max_length < 64:
        raise UsageError(f"--max-length {max_length}: too short", hint="use 64 or more")
    if to == "seq-cls":
        from rerankctl.models.export import to_seq_cls

        path = to_seq_cls(
            checkpoint, output, base_model=base_model, max_length=max_length, instruction=instruction
        )
        typer.echo(f"wrote sequence-classification reranker to {path} (score = logit_yes - logit_no)")
        return
    if not merge_lora:
        raise UsageError("nothing to do", hint="add --merge-lora, or --to seq-cls")
    from rerankctl.models.export import merge_lora as do_merge

    path = do_merge(checkpoint, output, base_model=base_model, max_length=max_length, instruction=instruction)
    typer.echo(f"wrote merged model to {path}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
