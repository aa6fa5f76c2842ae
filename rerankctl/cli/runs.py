"""`rerankctl runs`: list, inspect, compare, plot, export, delete and tag logged runs.

Thin: parses, calls `rerankctl.store`, prints. Runs are addressed by id, id
prefix or name. The store and rich are imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from rerankctl.cli import _output as out

LOSS_KEYS = ("loss", "train/loss", "train_loss", "train.loss")


def _complete_run(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion of run names and ids (never creates a store)."""
    from rerankctl.paths import store_path

    path = store_path()
    if not path.exists():
        return []
    try:
        from rerankctl.store import RunStore

        with RunStore.open(path, reap=False) as store:
            runs = store.list_runs(limit=200)
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    found = []
    for run in runs:
        for value in (run.name, run.id):
            if value.startswith(incomplete):
                found.append((value, f"{run.kind} {run.status}"))
    return found


RunArg = Annotated[str, typer.Argument(help="Run id, id prefix or name.", autocompletion=_complete_run)]
RunsArg = Annotated[
    list[str],
    typer.Argument(help="Run ids, id prefixes or names.", autocompletion=_complete_run, show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _store():
    from rerankctl.store import RunStore

    return RunStore.open()


def _last_loss(latest: dict[str, tuple[int, float]]) -> float | None:
    for key in LOSS_KEYS:
        if key in latest:
            return latest[key][1]
    losses = sorted(k for k in latest if k.endswith("loss") and not k.startswith("eval"))
    return latest[losses[0]][1] if losses else None


def ls(
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="Only runs of this kind (sft, rl, reward, ...).")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", "-s", help="Only runs with this status (running, completed, failed, killed)."
        ),
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only runs with this tag.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="Show at most this many runs (newest first).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first: id, name, kind, status, step, last loss, start time and duration."""
    with _store() as store:
        runs = store.list_runs(kind=kind, status=status, tag=tag, limit=limit)
        latest = {r.id: store.latest_metrics(r.id) for r in runs}
    rows = []
    for r in runs:
        steps = [s for s, _ in latest[r.id].values()]
        rows.append((r, max(steps) if steps else None, _last_loss(latest[r.id])))
    if as_json:
        out.print_json([{**r.to_dict(), "step": step, "last_loss": loss} for r, step, loss in rows])
        return
    if not rows:
        typer.echo("no runs" + (" match these filters" if (kind or status or tag) else " yet"))
        return
    out.print_table(
        ["id", "name", "kind", "status", ">step", ">last loss", "started", ">duration"],
        [
            (
                r.id,
                r.name,
                r.kind,
                out.styled_status(r.status),
                "-" if step is None else step,
                out.fmt_value(loss),
                out.fmt_time(r.started_at),
                out.fmt_duration(r.duration),
            )
            for r, step, loss in rows
        ],
    )


#: What `runs show` of an RL run summarises (issue 19), in this order, with what each one is.
RL_STATS = (
    ("clip_fraction", "actions whose ratio pi/pi_old was clipped"),
    ("clip_low_fraction", "clipped below 1 - clip_eps"),
    ("clip_high_fraction", "clipped above 1 + clip_eps_high"),
    ("ratio_mean", "mean ratio pi/pi_old"),
    ("ratio_min", "smallest ratio in the logging window"),
    ("ratio_max", "largest ratio in the logging window"),
    ("approx_kl", "KL(rollout policy || current), k3"),
    ("reward_mean", "mean reward of the sampled actions"),
    ("reward_std", "reward std of the sampled actions"),
    ("reward_greedy", "reward of the deployed (sorted) ranking"),
    ("kl", "KL to the reference (SFT) policy"),
    ("entropy", "policy entropy per action"),
    ("pair_accuracy", "DPO: pairs the policy orders right"),
)


def rl_stats(store, run_id: str) -> dict[str, dict[str, float]]:
    """Per RL statistic: its last value (and step), and its mean, min and max over the logged steps."""
    found = {}
    keys = set(store.metric_keys(run_id))
    for key, _ in RL_STATS:
        series = store.metric_series(run_id, key) if key in keys else []
        values = [v for _, v in series if v is not None]
        if not values:
            continue
        found[key] = {
            "step": series[-1][0],
            "last": series[-1][1],
            "mean": sum(values) / len(values),
            "min": min(values),
            "max": max(values),
            "count": len(values),
        }
    return found


def show(
    run: RunArg,
    events: Annotated[
        int, typer.Option("--events", "-e", help="How many of the latest events to show.")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show a run: its config, latest metrics, summary, artifacts, evals and latest events."""
    from rerankctl.store.compare import flatten

    with _store() as store:
        r = store.get_run(run)
        latest = store.latest_metrics(r.id)
        artifacts = store.artifacts(r.id)
        evals = store.evals(run_id=r.id)
        recent = store.last_events(r.id, events)
        rl = rl_stats(store, r.id) if r.kind == "rl" else {}
    if as_json:
        out.print_json(
            {
                "run": r.to_dict(),
                "latest_metrics": {k: {"step": s, "value": v} for k, (s, v) in latest.items()},
                "artifacts": artifacts,
                "evals": evals,
                "events": recent,
                **({"rl_stats": rl} if rl else {}),
            }
        )
        return
    from rich.text import Text

    con = out.console()
    where = f"pid {r.pid} on {r.host}" if r.pid else (r.host or "-")
    con.print(Text.assemble((r.name, "bold"), f"  id {r.id}  kind {r.kind}  ", out.styled_status(r.status)))
    con.print(
        f"started {out.fmt_time(r.started_at)}  ended {out.fmt_time(r.ended_at)}  "
        f"duration {out.fmt_duration(r.duration)}  ({where})",
        markup=False,
    )
    con.print(f"output {r.output_dir or '-'}  tags {', '.join(r.tags) or '-'}", markup=False)
    if r.error:
        con.print(Text.assemble(("error: ", "red"), r.error))
    if r.config:
        con.print(out.make_table(["key", "value"], sorted(flatten(r.config).items()), title="config"))
    if latest:
        rows = [(k, s, out.fmt_value(v)) for k, (s, v) in latest.items()]
        con.print(out.make_table(["metric", ">step", ">value"], rows, title="latest metrics"))
    if rl:
        rows = [
            (k, v["step"], *(out.fmt_value(v[c]) for c in ("last", "mean", "min", "max")))
            for k, v in rl.items()
        ]
        columns = ["RL statistic", ">step", ">last", ">mean", ">min", ">max"]
        con.print(out.make_table(columns, rows, title="RL updates (mean/min/max over the logged steps)"))
    if r.summary:
        con.print(out.make_table(["key", "value"], sorted(flatten(r.summary).items()), title="summary"))
    if artifacts:
        rows = [(a.kind, a.step, a.path, out.fmt_time(a.time)) for a in artifacts]
        con.print(out.make_table(["kind", ">step", "path", "time"], rows, title="artifacts"))
    if evals:
        rows = [(e.model or "-", e.dataset, e.metric, out.fmt_value(e.value)) for e in evals]
        con.print(out.make_table(["model", "dataset", "metric", ">value"], rows, title="evals"))
    if recent:
        rows = [(out.fmt_time(e.time), e.level, "" if e.step is None else e.step, e.message) for e in recent]
        con.print(
            out.make_table(["time", "level", ">step", "message"], rows, title=f"last {len(recent)} events")
        )


def compare(
    runs: RunsArg,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Show every config key, not only differing ones.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side: config differences and final (latest) metrics."""
    from rerankctl.errors import UsageError
    from rerankctl.store.compare import MISSING, config_table, metrics_table

    if len(runs) < 2:
        raise UsageError(
            "compare needs at least two runs", hint="rerankctl runs compare RUN_A RUN_B [RUN_C ...]"
        )
    with _store() as store:
        found = [store.get_run(ref) for ref in runs]
        latest = [store.latest_metrics(r.id) for r in found]
    config = config_table(found, only_different=not show_all)
    metrics = metrics_table(latest)
    if as_json:
        out.print_json(
            {
                "runs": [{"id": r.id, "name": r.name, "kind": r.kind, "status": r.status} for r in found],
                "config": {k: [None if v is MISSING else v for v in vals] for k, vals in config.items()},
                "metrics": {
                    k: [None if v is None else {"step": v[0], "value": v[1]} for v in vals]
                    for k, vals in metrics.items()
                },
            }
        )
        return
    con = out.console()
    heads = [f"{r.name} ({r.id[:8]})" for r in found]
    if config:
        rows = [(k, *("-" if v is MISSING else v for v in vals)) for k, vals in config.items()]
        con.print(
            out.make_table(["config", *heads], rows, title="config" if show_all else "config differences")
        )
    else:
        con.print("config: identical")
    if metrics:
        rows = [
            (k, *("-" if v is None else f"{out.fmt_value(v[1])} @{v[0]}" for v in vals))
            for k, vals in metrics.items()
        ]
        con.print(
            out.make_table(["metric", *(">" + h for h in heads)], rows, title="final metrics (value @step)")
        )
    else:
        con.print("metrics: none logged")


def plot(
    runs: RunsArg,
    metrics: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metric key to plot (repeatable; default: loss)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write an image (.png, .svg or .pdf; needs matplotlib)."),
    ] = None,
    width: Annotated[int | None, typer.Option(help="Terminal plot width in characters.")] = None,
    height: Annotated[int | None, typer.Option(help="Terminal plot height in lines.")] = None,
) -> None:
    """Plot metric curves of one or more runs, in the terminal or (-o) to an image file."""
    from rerankctl.errors import NotFoundError
    from rerankctl.store.plot import Curve, image_bytes, terminal_plot

    curves: list[Curve] = []
    with _store() as store:
        found = [store.get_run(ref) for ref in runs]
        available = {k for r in found for k in store.metric_keys(r.id)}
        wanted = list(metrics or (["loss"] if "loss" in available else []))
        if not wanted or not set(wanted) & available:
            missing = ", ".join(wanted) or "loss"
            raise NotFoundError(
                f"no metric {missing} in {', '.join(r.name for r in found)}",
                hint=f"available: {', '.join(sorted(available)) or 'none logged yet'}",
            )
        for r in found:
            for key in wanted:
                series = store.metric_series(r.id, key)
                if series:
                    label = key if len(found) == 1 else f"{r.name}:{key}"
                    curves.append(Curve.from_series(label, series))
    for key in wanted:
        if key not in available:
            typer.echo(f"warning: no metric {key!r} in these runs; skipped", err=True)
    title = found[0].name if len(found) == 1 else f"{len(found)} runs"
    if output is None:
        size = os.get_terminal_size(sys.stdout.fileno()) if sys.stdout.isatty() else None
        w = width or (size.columns if size else 100)
        h = height or (max(10, min(size.lines - 4, 30)) if size else 25)
        typer.echo(terminal_plot(curves, title, width=w, height=h, color=sys.stdout.isatty()))
        return
    fmt = output.suffix.lower().lstrip(".")
    data = image_bytes(curves, title, fmt)
    out.write_atomic(output, data)
    typer.echo(f"wrote {output}", err=True)


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"
    tensorboard = "tensorboard"
    mlflow = "mlflow"


def _export_to_tracker(store, r, fmt: ExportFormat, output: Path | None, experiment: str | None) -> None:
    """`runs export --format tensorboard|mlflow`: the run's curves into a tracker's own files."""
    from rerankctl.config.trackers import check_trackers_installed, default_mlflow_env
    from rerankctl.errors import UsageError

    check_trackers_installed([fmt.value], flag="--format")
    if fmt is ExportFormat.tensorboard:
        if output is None:
            raise UsageError(
                "--format tensorboard needs --output DIR (the event files' directory)",
                hint=f"rerankctl runs export {r.name} -f tensorboard -o tb/{r.name}; then tensorboard --logdir tb",
            )
        from rerankctl.store.export_trackers import write_tensorboard

        path, n = write_tensorboard(store, r, output)
        typer.echo(f"wrote {n} scalars to {path}", err=True)
        return
    from rerankctl.store.export_trackers import write_mlflow

    env = dict(os.environ)
    if output is not None:  # a local file store; a server or database comes from MLFLOW_TRACKING_URI
        env["MLFLOW_TRACKING_URI"] = output.resolve().as_uri()
    uri = default_mlflow_env(env)
    if "MLFLOW_ALLOW_FILE_STORE" in env:  # MLflow 3 reads it from the process environment
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", env["MLFLOW_ALLOW_FILE_STORE"])
    run_id, n = write_mlflow(store, r, uri, experiment or env.get("MLFLOW_EXPERIMENT_NAME"))
    typer.echo(f"wrote {n} metric values to MLflow run {run_id} in {uri}", err=True)


def export(
    run: RunArg,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="csv (metrics), json (everything), tensorboard (event files) or mlflow (a run in an MLflow store).",
        ),
    ] = ExportFormat.csv,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (default: stdout); tensorboard: the event files' directory; "
            "mlflow: a local store directory (default: $MLFLOW_TRACKING_URI, else $RERANKCTL_HOME/mlruns).",
        ),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="CSV with one row per step and one column per metric.")
    ] = False,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="mlflow: the experiment to create the run in (default: Default)."),
    ] = None,
) -> None:
    """Export a run's metrics as CSV, everything logged about it as JSON, or its curves to TensorBoard/MLflow."""
    from rerankctl.errors import UsageError
    from rerankctl.store.export import write_csv, write_json

    if wide and fmt is not ExportFormat.csv:
        raise UsageError("--wide is for --format csv", hint="drop --wide")
    if experiment and fmt is not ExportFormat.mlflow:
        raise UsageError("--experiment is for --format mlflow", hint="drop --experiment")
    with _store() as store:
        r = store.get_run(run)
        if fmt in (ExportFormat.tensorboard, ExportFormat.mlflow):
            _export_to_tracker(store, r, fmt, output, experiment)
            return

        def write(fh) -> int:
            if fmt is ExportFormat.csv:
                return write_csv(store, r, fh, wide=wide)
            return write_json(store, r, fh)

        if output is None:
            write(sys.stdout)
            return
        with out.open_atomic(output, "w", newline="") as fh:
            n = write(fh)
    typer.echo(f"wrote {n} {'rows' if fmt is ExportFormat.csv else 'metric rows'} to {output}", err=True)


def rm(
    runs: RunsArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also delete runs whose process is still running.")
    ] = False,
) -> None:
    """Delete runs and everything they logged from the store (their output files are kept)."""
    from rerankctl.errors import UsageError
    from rerankctl.store.procs import hostname, pid_alive

    with _store() as store:
        found = {r.id: r for r in (store.get_run(ref) for ref in runs)}.values()
        for r in found:
            if not force and r.status == "running" and r.host == hostname() and pid_alive(r.pid):
                raise UsageError(
                    f"run {r.name} is still running (pid {r.pid})", hint="stop it first, or pass --force"
                )
        names = ", ".join(f"{r.name} ({r.id})" for r in found)
        if not yes:
            typer.confirm(f"Delete {len(found)} run(s): {names}?", abort=True)
        for r in found:
            store.delete_run(r.id)
            kept = f"; files kept in {r.output_dir}" if r.output_dir else ""
            typer.echo(f"deleted {r.name} ({r.id}){kept}")


def tag(
    run: RunArg,
    tags: Annotated[
        list[str], typer.Argument(help="Tags to add (or remove with --remove).", show_default=False)
    ],
    remove: Annotated[
        bool, typer.Option("--remove", "-r", help="Remove the tags instead of adding them.")
    ] = False,
) -> None:
    """Add tags to a run, or remove them; prints the run's tags afterwards."""
    with _store() as store:
        r = store.remove_tags(run, tags) if remove else store.add_tags(run, tags)
    typer.echo(f"{r.name}: {', '.join(r.tags) or '(no tags)'}")


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(
        no_args_is_help=True,
        help="List, inspect, compare, plot and export logged runs (addressed by id, id prefix or name).",
    )
    runs_app.command("ls")(ls)
    runs_app.command("show")(show)
    runs_app.command("compare")(compare)
    runs_app.command("plot")(plot)
    runs_app.command("export")(export)
    runs_app.command("rm")(rm)
    runs_app.command("tag")(tag)
    app.add_typer(runs_app, name="runs")
