"""`rerankctl eval parity`: the same pairs through the local model and each endpoint, max |Δp|.

Hooked into the `eval` group by ``register(eval_app)``.
"""

from __future__ import annotations

import json

import typer

DOC = "Score fixed pairs (some truncated) locally and through each endpoint: max |Δp|, Kendall τ, top-k flips, causes."


def eval_parity(cfg) -> None:  # type: ignore[no-untyped-def]
    """Score the fixed pairs with ``cfg.model`` locally and through every endpoint and export."""
    from rerankctl.errors import UsageError

    urls, exports, max_length, instruction = cfg.endpoints, cfg.export, cfg.max_length, cfg.instruction
    if not urls and not exports:
        raise UsageError(
            "nothing to compare with", hint="rerankctl eval parity --model DIR --endpoints URL [--export DIR]"
        )
    from rerankctl.eval.parity import CrossEncoderScorer, TransformersScorer, check_parity
    from rerankctl.serve.backends import load_backend
    from rerankctl.serve.client import APIReranker
    from rerankctl.store import RunStore

    clients = [APIReranker(u, api_key=cfg.api_key, use_cache=False, retries=1) for u in urls]
    for path in exports:
        clients += [TransformersScorer(path, max_length), CrossEncoderScorer(path, max_length)]
    local = load_backend(cfg.model, max_length=max_length, instruction=instruction, dtype="fp32")
    with RunStore.open() as store, store.create_run(
        kind="eval", config={"command": "eval parity", "model": cfg.model, "endpoints": urls, "exports": exports,
                             "max_length": max_length, "instruction": instruction, "threshold": cfg.threshold},
    ) as writer:  # fmt: skip
        results = check_parity(local, clients, instruction=instruction, threshold=cfg.threshold, k=cfg.top_k)
        for r in results:
            for metric, value in (("max_abs_dp", r.max_abs_diff), ("kendall_tau", r.kendall_tau),
                                  ("top_k_flips", r.top_k_flips)):  # fmt: skip
                writer.log_eval("parity", metric, value, model=r.endpoint)
            for cause in r.causes:
                writer.log_event(f"{r.endpoint}: {cause}", level="warning")
        writer.set_summary({"passed": all(r.passed for r in results)})
    if cfg.as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            verdict = "ok" if r.passed else "FAIL"
            typer.echo(
                f"{verdict} {r.endpoint}: max |Δp| {r.max_abs_diff:.2e}, Kendall τ {r.kendall_tau:.4f},"
                f" top-{cfg.top_k} flips {r.top_k_flips}/{r.n_queries} queries, {r.n_pairs} pairs"
            )
            for cause in r.causes:
                typer.echo(f"  cause: {cause}")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def register(eval_app: typer.Typer) -> None:
    from rerankctl.cli._options import ConfigCommand, apply_flag_aliases, register_config_command
    from rerankctl.cli.eval import expand_multi_values
    from rerankctl.config.eval import EvalParityConfig

    class MultiValueCommand(ConfigCommand):
        """Accepts ``--endpoints a b`` (space-separated), as ``rerankctl eval`` does."""

        def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
            args = expand_multi_values(apply_flag_aliases(list(args), self.flag_aliases))
            return super().parse_args(ctx, args)

    register_config_command(
        eval_app, "parity", EvalParityConfig, command="eval parity", run=eval_parity, doc=DOC, ranges=True,
        base=MultiValueCommand,
    )  # fmt: skip
