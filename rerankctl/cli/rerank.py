"""`rerankctl rerank`: score documents for a query with a local model and print the ranking."""

from __future__ import annotations

import typer

from rerankctl.cli._options import argument
from rerankctl.data.limits import DEFAULT_MAX_CHARS

DOC = "Rank documents for a query with a local reranker."

#: The documents, as arguments (the only parameter not in RerankConfig: it is positional).
DOCS = argument("docs", list[str], "Documents to rank (or use --input).")


def rerank(cfg, docs: list[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    """Rank ``docs`` (or every line of ``cfg.input``) for the query with the model ``cfg`` names."""
    from rerankctl.errors import UsageError

    if cfg.input is None and (cfg.query is None or not docs):
        raise UsageError(
            "give --query and documents, or --input FILE",
            hint='rerankctl rerank -m DIR -q "what is BM25" "doc one" "doc two"',
        )
    from rerankctl.config.preflight import check_ref
    from rerankctl.models.quantize import check_quantize

    model = check_ref(cfg.model, "--model")  # before torch: a missing dir is one line, runs/x/final resolves
    quant = check_quantize(cfg.quantize, cfg.device)
    from rerankctl.models.reranker import Qwen3Reranker

    reranker = Qwen3Reranker(
        model, device="cpu" if quant else cfg.device, dtype=cfg.dtype, max_length=cfg.max_length,
        instruction=cfg.instruction, quantize=quant, shared_prefix=cfg.shared_prefix,
    )  # fmt: skip
    items: list[tuple[str, list[str]]] = []
    if cfg.input is not None:
        items = _read_items(cfg.input, cfg.max_chars)
    else:
        from rerankctl.data.limits import cut

        items = [(cut(cfg.query, cfg.max_chars)[0], [cut(d, cfg.max_chars)[0] for d in docs or []])]
    from rerankctl.cli._rerank_output import print_rankings

    results = []
    for q, ds in items:
        ranking, scores = reranker.rerank(q, ds, instruction=cfg.instruction, batch_size=cfg.batch_size)
        results.append((q, ds, ranking, scores))
    print_rankings(results, top=cfg.top, as_json=cfg.as_json)


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
    from rerankctl.cli._options import register_config_command
    from rerankctl.config.rerank import RerankConfig

    register_config_command(
        app, "rerank", RerankConfig, command="rerank", run=rerank, doc=DOC, extra=(DOCS,), ranges=True
    )
