"""`rerankctl eval parity`: the same pairs through the local model and each endpoint, max |Δp|.

Hooked into the `eval` group by ``register(eval_app)``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer


def eval_parity(
    model: Annotated[str, typer.Option("--model", "-m", help="The model the endpoints should serve.")],
    endpoints: Annotated[
        list[str] | None,
        typer.Option("--endpoints", "-e", help="Rerank endpoints (space- or comma-separated)."),
    ] = None,
    export: Annotated[
        list[str] | None,
        typer.Option(
            "--export",
            help="A seq-cls export to score through sentence-transformers CrossEncoder and transformers too.",
        ),
    ] = None,
    max_length: Annotated[int, typer.Option(help="Token limit of the local model.")] = 1024,
    instruction: Annotated[str | None, typer.Option(help="Instruction sent with every pair.")] = None,
    threshold: Annotated[
        float, typer.Option(help="Largest |Δp| allowed; past it the exit code is 1.")
    ] = 1e-5,
    top_k: Annotated[int, typer.Option(help="k of the top-k order flips.")] = 3,
    api_key: Annotated[str | None, typer.Option(help="Bearer key for the endpoints.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Score fixed pairs (some truncated) locally and through each endpoint: max |Δp|, Kendall τ, top-k flips, causes."""
    from rerankctl.cli.eval import split_commas
    from rerankctl.errors import UsageError

    urls = split_commas(endpoints)
    exports = split_commas(export)
    if not urls and not exports:
        raise UsageError(
            "nothing to compare with", hint="rerankctl eval parity --model DIR --endpoints URL [--export DIR]"
        )
    if threshold < 0:
        raise UsageError(f"--threshold {threshold} must not be negative")
    from rerankctl.eval.parity import CrossEncoderScorer, TransformersScorer, check_parity
    from rerankctl.serve.backends import load_backend
    from rerankctl.serve.client import APIReranker
    from rerankctl.store import RunStore

    clients = [APIReranker(u, api_key=api_key, use_cache=False, retries=1) for u in urls]
    for path in exports:
        clients += [TransformersScorer(path, max_length), CrossEncoderScorer(path, max_length)]
    local = load_backend(model, max_length=max_length, instruction=instruction, dtype="fp32")
    with RunStore.open() as store, store.create_run(
        kind="eval", config={"command": "eval parity", "model": model, "endpoints": urls, "exports": exports,
                             "max_length": max_length, "instruction": instruction, "threshold": threshold},
    ) as writer:  # fmt: skip
        results = check_parity(local, clients, instruction=instruction, threshold=threshold, k=top_k)
        for r in results:
            for metric, value in (("max_abs_dp", r.max_abs_diff), ("kendall_tau", r.kendall_tau),
                                  ("top_k_flips", r.top_k_flips)):  # fmt: skip
                writer.log_eval("parity", metric, value, model=r.endpoint)
            for cause in r.causes:
                writer.log_event(f"{r.endpoint}: {cause}", level="warning")
        writer.set_summary({"passed": all(r.passed for r in results)})
    if json_output:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            verdict = "ok" if r.passed else "FAIL"
            typer.echo(
                f"{verdict} {r.endpoint}: max |Δp| {r.max_abs_diff:.2e}, Kendall τ {r.kendall_tau:.4f},"
                f" top-{top_k} flips {r.top_k_flips}/{r.n_queries} queries, {r.n_pairs} pairs"
            )
            for cause in r.causes:
                typer.echo(f"  cause: {cause}")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def register(eval_app: typer.Typer) -> None:
    from typer.core import TyperCommand

    from rerankctl.cli.eval import expand_multi_values

    class MultiValueCommand(TyperCommand):
        """Accepts ``--endpoints a b`` (space-separated), as ``rerankctl eval`` does."""

        def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
            return super().parse_args(ctx, expand_multi_values(list(args)))

    eval_app.command("parity", cls=MultiValueCommand)(eval_parity)
