"""Printing rankings as rich tables or JSON."""

from __future__ import annotations

import json
from typing import Any


def print_rankings(
    results: list[tuple[str, list[str], list[int], list[float]]], top: int | None, as_json: bool
) -> None:
    if as_json:
        out: list[dict[str, Any]] = []
        for query, docs, ranking, scores in results:
            shown = ranking[:top] if top else ranking
            out.append(
                {
                    "query": query,
                    "results": [
                        {"rank": r + 1, "index": i, "score": scores[i], "document": docs[i]}
                        for r, i in enumerate(shown)
                    ],
                }
            )
        print(json.dumps(out if len(out) != 1 else out[0], ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for query, docs, ranking, scores in results:
        table = Table(title=f"query: {query}", title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("score", justify="right")
        table.add_column("#", justify="right")
        table.add_column("document", overflow="fold")
        for rank, index in enumerate(ranking[:top] if top else ranking, start=1):
            table.add_row(str(rank), f"{scores[index]:.4f}", str(index), docs[index])
        console.print(table)
