"""`rerankctl export`: merge LoRA adapters and convert rerankers to sequence classification."""

from __future__ import annotations

from typing import Annotated

import typer


def export(
    checkpoint: Annotated[str, typer.Argument(help="A training run's final/ or checkpoint-N/ directory.")],
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
) -> None:
    """Export a trained reranker as a standalone model directory."""
    from rerankctl.errors import UsageError

    if to not in ("causal-lm", "seq-cls"):
        raise UsageError(f"--to {to}: unknown target", hint="use causal-lm or seq-cls")
    if to == "seq-cls":
        from rerankctl.models.export import to_seq_cls

        path = to_seq_cls(checkpoint, output, base_model=base_model)
        typer.echo(f"wrote sequence-classification reranker to {path} (score = logit_yes - logit_no)")
        return
    if not merge_lora:
        raise UsageError("nothing to do", hint="add --merge-lora, or --to seq-cls")
    from rerankctl.models.export import merge_lora as do_merge

    path = do_merge(checkpoint, output, base_model=base_model)
    typer.echo(f"wrote merged model to {path}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
