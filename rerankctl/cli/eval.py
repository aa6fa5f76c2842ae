"""`rerankctl eval`: MTEB reranking tasks or a local file, against endpoints and local models.

``rerankctl eval --endpoints URL1 URL2 --datasets chinese`` runs the group's tasks through the
``mteb`` package (its data and scoring, so numbers match the leaderboard). ``eval_app`` is a
Typer group whose callback is the rerank evaluation; other modules add subcommands to it
(``eval_app.command("reward")(...)``), which then run instead of the callback.

Options that take several values accept them space-separated (``--endpoints a b c``), repeated
(``--endpoints a --endpoints b``) or comma-separated.
"""

from __future__ import annotations

import json

import typer
from typer.core import TyperGroup

# Options whose values may follow them space-separated: `--endpoints a b c`.
MULTI_VALUE_OPTIONS = ("--endpoints", "-e", "--datasets", "-d", "--model", "-m")


def expand_multi_values(args: list[str], stop_words: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Rewrite ``--endpoints a b`` into ``--endpoints a --endpoints b`` (Click options take one value).

    Values run until the next option, ``--``, or a subcommand name in ``stop_words``; from a
    subcommand name on, the arguments are the subcommand's and are left as they are.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in stop_words or arg == "--":
            return out + args[i:]
        out.append(arg)
        i += 1
        if arg not in MULTI_VALUE_OPTIONS:
            continue
        first = True
        while i < len(args) and not args[i].startswith("-") and (first or args[i] not in stop_words):
            if not first:
                out.append(arg)
            out.append(args[i])
            first = False
            i += 1
    return out


def canonical_flags(args: list[str], stop_words: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The original tool's flag spellings (``--endpoint URL``) as ours (config/aliases.py); hidden in --help."""
    from rerankctl.config.aliases import FLAG_ALIASES

    out: list[str] = []
    for i, arg in enumerate(args):
        if arg in stop_words or arg == "--":
            return out + args[i:]
        flag, eq, value = arg.partition("=")
        out.append(FLAG_ALIASES.get(flag, flag) + eq + value if flag.startswith("--") else arg)
    return out


def split_commas(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


class EvalGroup(TyperGroup):
    """The ``eval`` group: older flag spellings, then space-separated multi-values, before Click parses."""

    flag_aliases: dict[str, str] = {}  # the hidden spellings of EvalConfig's flags (set below)

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        from rerankctl.cli._options import apply_flag_aliases

        stop = set(self.commands)
        args = apply_flag_aliases(canonical_flags(list(args), stop), self.flag_aliases, stop)
        return super().parse_args(ctx, expand_multi_values(args, stop))


eval_app = typer.Typer(
    cls=EvalGroup,
    invoke_without_command=True,
    no_args_is_help=False,
)


def _parse_gpu_map(values: list[str] | None) -> dict[str, int] | None:
    from rerankctl.config.eval import parse_gpu_map

    return parse_gpu_map(values)


def _list_datasets(as_json: bool) -> None:
    from rerankctl.eval.groups import GROUPS, list_datasets_rows

    rows = list_datasets_rows()
    if as_json:
        typer.echo(json.dumps({"groups": {g: list(t) for g, t in GROUPS.items()}, "tasks": rows}, indent=2))
        return
    width = max(len(r["task"]) for r in rows)
    score_width = max(len(r["main_score"]) for r in rows)
    current = None
    for row in rows:
        if row["group"] != current:
            current = row["group"]
            count = len(GROUPS[current])
            typer.echo(f"{current} ({count} task{'s' if count != 1 else ''})")
        typer.echo(f"  {row['task']:<{width}}  {row['main_score']:<{score_width}}  {row['languages']}")
    typer.echo(f"all ({len(GROUPS['all'])} tasks): every task above")


DOC = """Evaluate rerankers (endpoints, local models) on MTEB reranking tasks or a local file.

MTEB tasks run through the mteb package's own data and scoring (main scores match the leaderboard).
Models run in parallel; results go to eval.json, eval.md and the run store.

[bold]Examples[/bold]

rerankctl eval --endpoints http://127.0.0.1:9997 http://127.0.0.1:9998 --datasets chinese

rerankctl eval --model runs/my-run/final --input dev.jsonl --baseline

rerankctl eval -e URL --two-stage --embedding-endpoint http://127.0.0.1:8000 --top-k 100
"""


def run(cfg, ctx: typer.Context) -> None:  # type: ignore[no-untyped-def]
    """The rerank evaluation ``cfg`` (an :class:`~rerankctl.config.eval.EvalConfig`) describes."""
    if cfg.list_datasets:
        _list_datasets(cfg.as_json)
        return
    if not cfg.endpoints and not cfg.models:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)

    from rerankctl.config.preflight import check_ref
    from rerankctl.eval.runner import apply_proxy
    from rerankctl.models.quantize import check_quantize

    # Before any import or run row: a missing model dir is one line and leaves no failed run behind.
    models = [check_ref(m, "--model") for m in cfg.models]
    cfg.gpu_placements  # noqa: B018 - a malformed --gpu-map is refused before anything runs
    check_quantize(cfg.quantize, cfg.device)
    # Before anything imports mteb/datasets/huggingface_hub, which read the proxy at import.
    apply_proxy(cfg.proxy, cfg.endpoints + ([cfg.embedding_endpoint] if cfg.embedding_endpoint else []))
    _run(cfg.model_copy(update={"models": models}), cfg.as_json)


def _install() -> None:
    """``eval``'s own options: the fields of EvalConfig (cli/_options.py builds them)."""
    from rerankctl.cli._options import config_callback
    from rerankctl.config.eval import EvalConfig

    callback, _specs, aliases = config_callback(
        EvalConfig, command="eval", run=run, doc=DOC, name="eval", presets=True, ranges=True,
        before=lambda ctx, values: ctx.invoked_subcommand is not None,
    )  # fmt: skip
    EvalGroup.flag_aliases = aliases
    eval_app.callback(invoke_without_command=True)(callback)


_install()


def _run(opts, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from rerankctl.eval.local import FIRST_STAGE
    from rerankctl.eval.multi import MultiModelResult
    from rerankctl.eval.report import markdown_table, report_dict
    from rerankctl.eval.runner import run_eval

    outcome = run_eval(opts)
    if as_json:
        typer.echo(json.dumps(report_dict(outcome.rows, outcome.models, run_id=outcome.run_id,
                                          errors=outcome.errors, paths={k: str(v) for k, v in outcome.paths.items()}),
                              indent=2))  # fmt: skip
    else:
        typer.echo(markdown_table(outcome.rows, outcome.models), nl=False)
        for kind, path in outcome.paths.items():
            typer.echo(f"{kind}: {path}", err=True)
        if outcome.run_name:
            typer.echo(f"run: {outcome.run_name} (rerankctl runs show {outcome.run_name})", err=True)
    models_scored = [r for r in outcome.rows if r.model != FIRST_STAGE]  # --baseline's row is no model's
    MultiModelResult(errors=outcome.errors).raise_for_errors(kept=len(models_scored))


# Modules adding subcommands to `eval_app`, each exposing ``register(eval_app)``.
SUBCOMMAND_MODULES = ("eval_reward", "eval_parity")
_registered: set[str] = set()


def register(app: typer.Typer) -> None:
    """Add ``eval`` with its subcommands (``eval reward``, ...) to the root app."""
    import importlib

    for name in SUBCOMMAND_MODULES:
        module_name = f"rerankctl.cli.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # not written yet
                continue
            raise
        if name not in _registered:  # build_app() may run more than once in a process
            module.register(eval_app)
            _registered.add(name)
    app.add_typer(eval_app, name="eval")
