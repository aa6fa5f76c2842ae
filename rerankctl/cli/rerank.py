"""`rerankctl rerank`: score documents for a query with a local model and print the ranking."""

from __future__ import annotations

from typing import Annotated

import typer

from rerankctl.data.limits import DEFAULT_MAX_CHARS


def rerank(
    docs: Annotated[
        list[str] | None, typer.Argument(help="Documents to rank (or use --input).", show_default=False)
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model directory, hub id or training run's final/.")
    ] = ...,
    query: Annotated[str | None, typer.Option("--query", "-q", help="The query.")] = None,
    input_file: Annotated[
        str | None,
        typer.Option("--input", "-i", help="JSONL with query/docs (or query/pos/neg); one ranking per line."),
    ] = None,
    instruction: Annotated[str | None, typer.Option(help="Task instruction (default: web search).")] = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option(help="Prompt token limit.")] = 1024,
    max_chars: Annotated[
        int, typer.Option(help="Characters kept per query/document before tokenising (0 = all).")
    ] = DEFAULT_MAX_CHARS,
    device: Annotated[str | None, typer.Option(help="cuda, cuda:1, cpu (default: best available).")] = None,
    dtype: Annotated[str, typer.Option(help="auto, bf16, fp16, fp32.")] = "auto",
    quantize: Annotated[
        str,
        typer.Option(
            "--quantize",
            help="none, or int8: dynamic int8 linear layers (CPU, ~2x faster; scores drift: check with eval parity).",
        ),
    ] = "none",
    top: Annotated[int | None, typer.Option("--top", "-k", help="Show only the best K.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Rank documents for a query with a local reranker."""
    from rerankctl.errors import UsageError

    if input_file is None and (query is None or not docs):
        raise UsageError(
            "give --query and documents, or --input FILE",
            hint='rerankctl rerank -m DIR -q "what is BM25" "doc one" "doc two"',
        )
    from rerankctl.config.preflight import check_ref
    from rerankctl.models.quantize import check_quantize

    model = check_ref(model, "--model")  # before torch: a missing dir is one line, runs/x/final resolves
    quant = check_quantize(quantize, device)
    from rerankctl.models.reranker import Qwen3Reranker

    reranker = Qwen3Reranker(
        model, device="cpu" if quant else device, dtype=dtype, max_length=max_length,
        instruction=instruction, quantize=quant,
    )  # fmt: skip
    items: list[tuple[str, list[str]]] = []
    if input_file is not None:
        items = _read_items(input_file, max_chars)
    else:
        from rerankctl.data.limits import cut

        items = [(cut(query, max_chars)[0], [cut(d, max_chars)[0] for d in docs or []])]
    from rerankctl.cli._rerank_output import print_rankings

    results = []
    for q, ds in items:
        ranking, scores = reranker.rerank(q, ds, instruction=instruction, batch_size=batch_size)
        results.append((q, ds, ranking, scores))
    print_rankings(results, top=top, as_json=json_out)


def _read_items(path: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[str, list[str]]]:
    """(query, docs) per line of a rerank-format file; errors name the file, line and field."""
    from rerankctl.data.validate import parse_rows

    items = []
    for _row, record, error in parse_rows(path, "rerank", check_images=False, max_chars=max_chars):
        if error is not None:
            raise error
        items.append((record.query, record.docs))
    return items


def register(app: typer.Typer) -> None:
    app.command("rerank")(rerank)
