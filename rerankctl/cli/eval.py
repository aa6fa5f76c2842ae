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
from typing import Annotated

import typer
from typer.core import TyperGroup

from rerankctl.data.limits import DEFAULT_MAX_CHARS

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
    """The ``eval`` group: expands space-separated multi-values before Click parses them."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        args = canonical_flags(list(args), set(self.commands))
        return super().parse_args(ctx, expand_multi_values(args, set(self.commands)))


eval_app = typer.Typer(
    cls=EvalGroup,
    invoke_without_command=True,
    no_args_is_help=False,
)


def _parse_gpu_map(values: list[str] | None) -> dict[str, int] | None:
    from rerankctl.errors import UsageError

    if not values:
        return None
    out: dict[str, int] = {}
    for item in split_commas(values):
        model, sep, gpu = item.rpartition("=")
        if not sep or not model or not gpu.strip().isdigit():
            raise UsageError(
                f"--gpu-map {item!r}: expected MODEL_DIR=GPU_INDEX", hint="e.g. --gpu-map runs/a/final=0"
            )
        out[model] = int(gpu)
    return out


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


@eval_app.callback(invoke_without_command=True)
def eval_main(
    ctx: typer.Context,
    endpoints: Annotated[
        list[str] | None,
        typer.Option(
            "--endpoints",
            "-e",
            help="Rerank endpoint URL(s), e.g. http://127.0.0.1:9997.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Local model dir(s) scored in-process, no server.", show_default=False
        ),
    ] = None,
    datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--datasets",
            "-d",
            help="Groups (chinese, english, multilingual, other, code, all) or MTEB task names. Default: chinese.",
            show_default=False,
        ),
    ] = None,
    input_path: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            help="A rerank-format JSONL/Parquet/CSV file instead of MTEB.",
            show_default=False,
        ),
    ] = None,
    list_datasets: Annotated[
        bool,
        typer.Option(
            "--list-datasets", help="Print the groups, their tasks, languages and main scores, and exit."
        ),
    ] = False,
    model_workers: Annotated[
        int,
        typer.Option(
            "--model-workers", help="Models evaluated at the same time (endpoints: one process each)."
        ),
    ] = 2,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", help="Documents per request (endpoints) or per forward pass (local models)."
        ),
    ] = 32,
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", help="Requests in flight per endpoint.")
    ] = 8,
    proxy: Annotated[
        str | None,
        typer.Option(
            "--proxy",
            help="HTTP(S) proxy for dataset downloads (loopback and the endpoints bypass it).",
            show_default=False,
        ),
    ] = None,
    instruction: Annotated[
        str | None,
        typer.Option(
            "--instruction",
            help="Instruction for every query (default: the model's/server's).",
            show_default=False,
        ),
    ] = None,
    max_samples: Annotated[
        int | None,
        typer.Option(
            "--max-samples", help="Evaluate only the first N queries of each task split.", show_default=False
        ),
    ] = None,
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars", help="Characters kept per query/document of --input before tokenising (0 = all)."
        ),
    ] = DEFAULT_MAX_CHARS,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Directory for eval.json / eval.md (default: under the rerankctl home).",
            show_default=False,
        ),
    ] = None,
    two_stage: Annotated[
        bool,
        typer.Option(
            "--two-stage",
            help="Retrieve top-k with an embedding model first, then rerank (retrieval tasks, nDCG@10).",
        ),
    ] = False,
    embedding_endpoint: Annotated[
        str | None,
        typer.Option(
            "--embedding-endpoint",
            help="OpenAI-style /v1/embeddings URL for --two-stage.",
            show_default=False,
        ),
    ] = None,
    embedding_model: Annotated[
        str | None,
        typer.Option(
            "--embedding-model",
            help="Local sentence-transformers model dir for --two-stage.",
            show_default=False,
        ),
    ] = None,
    embedding_name: Annotated[
        str | None,
        typer.Option(
            "--embedding-name", help="The 'model' field sent to --embedding-endpoint.", show_default=False
        ),
    ] = None,
    top_k: Annotated[
        int, typer.Option("--top-k", help="First-stage candidates per query for --two-stage.")
    ] = 100,
    plot: Annotated[
        bool, typer.Option("--plot", help="Also write eval.png, a bar chart (needs matplotlib).")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="RERANKCTL_API_KEY", help="Bearer key for the endpoints.", show_default=False
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")] = 60.0,
    max_length: Annotated[
        int,
        typer.Option(
            "--max-length",
            min=16,
            help="Prompt token limit of local --model rerankers (the document is cut first).",
        ),
    ] = 1024,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="Device for local models (cpu, cuda, cuda:1); default: first GPU.",
            show_default=False,
        ),
    ] = None,
    quantize: Annotated[
        str,
        typer.Option(
            "--quantize",
            help="none, or int8: dynamic int8 linear layers (CPU, ~2x faster; scores drift: check with eval parity).",
        ),
    ] = "none",
    gpu_map: Annotated[
        list[str] | None,
        typer.Option(
            "--gpu-map", help="Pin local models to GPUs: DIR=INDEX (repeatable).", show_default=False
        ),
    ] = None,
    max_models_per_gpu: Annotated[
        int, typer.Option("--max-models-per-gpu", help="Local models loaded on one GPU at a time.")
    ] = 1,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not record the results in the run store.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report on stdout instead of the table.")
    ] = False,
) -> None:
    """Evaluate rerankers (endpoints, local models) on MTEB reranking tasks or a local file.

    MTEB tasks run through the mteb package's own data and scoring (main scores match the leaderboard).
    Models run in parallel; results go to eval.json, eval.md and the run store.

    [bold]Examples[/bold]

    rerankctl eval --endpoints http://127.0.0.1:9997 http://127.0.0.1:9998 --datasets chinese

    rerankctl eval --model runs/my-run/final --input dev.jsonl

    rerankctl eval -e URL --two-stage --embedding-endpoint http://127.0.0.1:8000 --top-k 100
    """
    if ctx.invoked_subcommand is not None:
        return
    if list_datasets:
        _list_datasets(as_json)
        return
    if not endpoints and not model:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)

    from rerankctl.config.preflight import check_ref
    from rerankctl.eval.runner import EvalOptions, apply_proxy

    # Before any import or run row: a missing model dir is one line and leaves no failed run behind.
    models = [check_ref(m, "--model") for m in split_commas(model)]

    # Before anything imports mteb/datasets/huggingface_hub, which read the proxy at import.
    apply_proxy(proxy, split_commas(endpoints) + ([embedding_endpoint] if embedding_endpoint else []))
    opts = EvalOptions(
        endpoints=split_commas(endpoints), models=models, datasets=split_commas(datasets),
        input=input_path, model_workers=model_workers, batch_size=batch_size, max_concurrency=max_concurrency,
        instruction=instruction, max_samples=max_samples, max_chars=max_chars, max_length=max_length, output=output, two_stage=two_stage,
        embedding_endpoint=embedding_endpoint, embedding_model=embedding_model, embedding_name=embedding_name,
        top_k=top_k, plot=plot, api_key=api_key, timeout=timeout, device=device, gpu_map=_parse_gpu_map(gpu_map),
        max_models_per_gpu=max_models_per_gpu, proxy=proxy, store=not no_store,
        quantize=_check_quantize(quantize, device),
    )  # fmt: skip
    _run(opts, as_json)


def _run(opts, as_json: bool) -> None:  # type: ignore[no-untyped-def]
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
    MultiModelResult(errors=outcome.errors).raise_for_errors(kept=len(outcome.rows))


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


def _check_quantize(mode: str, device: str | None) -> str | None:
    from rerankctl.models.quantize import check_quantize

    return check_quantize(mode, device)
