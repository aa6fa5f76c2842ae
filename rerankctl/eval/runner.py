"""What ``rerankctl eval`` does: build the rerankers, run the chosen evaluation, write reports.

The CLI module only parses flags into `EvalOptions` and prints; everything else is here so it
can be called (and tested) from Python too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rerankctl.config.eval import EvalConfig
from rerankctl.errors import RerankctlError, UsageError

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


#: Every ``rerankctl eval`` flag, as a config model (config/eval.py declares and documents each).
EvalOptions = EvalConfig


@dataclass
class EvalOutcome:
    """What an evaluation produced."""

    rows: list[Any]
    models: list[str]
    paths: dict[str, Path]
    run_id: str | None = None
    run_name: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def apply_proxy(proxy: str | None, endpoints: list[str]) -> None:
    """Route dataset downloads through ``proxy`` (set before mteb/datasets are imported).

    Loopback and the evaluated endpoints' hosts go in ``NO_PROXY`` so the proxy never sits
    between us and the rerank servers.
    """
    if not proxy:
        return
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ[var] = proxy
    hosts = list(LOOPBACK_HOSTS) + [urlparse(e).hostname or "" for e in endpoints]
    existing = [h for h in os.environ.get("NO_PROXY", "").split(",") if h]
    no_proxy = ",".join(dict.fromkeys(existing + [h for h in hosts if h]))
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy


def validate(opts: EvalOptions) -> None:
    """Reject flag combinations that cannot work, before anything heavy is loaded."""
    if not opts.endpoints and not opts.models:
        raise UsageError("nothing to evaluate", hint="give --endpoints URL ... or --model DIR")
    if opts.input and opts.two_stage:
        raise UsageError(
            "--input and --two-stage cannot be combined", hint="two-stage runs on MTEB retrieval tasks"
        )
    if opts.input and opts.datasets:
        raise UsageError("give either --input FILE or --datasets, not both")
    if opts.two_stage and not (opts.embedding_endpoint or opts.embedding_model):
        raise UsageError(
            "--two-stage needs a first stage", hint="add --embedding-endpoint URL or --embedding-model DIR"
        )
    if opts.baseline and not (opts.input or opts.two_stage):
        raise UsageError(
            "--baseline needs the first stage's order, which MTEB reranking tasks do not carry",
            hint="use --input FILE (its scores, else its docs order) or --two-stage",
        )
    if opts.processor and not opts.input:
        raise UsageError(
            "--processor rewrites the records of --input FILE, and there is none",
            hint="add --input FILE, or drop --processor (MTEB tasks are read by mteb)",
        )
    if opts.embedding_endpoint and opts.embedding_model:
        raise UsageError("give either --embedding-endpoint or --embedding-model, not both")
    for endpoint in opts.endpoints:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(
                f"--endpoints {endpoint!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:9997"
            )
    for name, value in (("--model-workers", opts.model_workers), ("--batch-size", opts.batch_size),
                        ("--max-concurrency", opts.max_concurrency), ("--top-k", opts.top_k)):  # fmt: skip
        if value < 1:
            raise UsageError(f"{name} must be at least 1 (got {value})")
    if opts.max_samples is not None and opts.max_samples < 1:
        raise UsageError(f"--max-samples must be at least 1 (got {opts.max_samples})")
    if opts.input and not Path(opts.input).exists():
        from rerankctl.errors import NotFoundError

        raise NotFoundError(f"--input {opts.input}: no such file")


def build_endpoint(opts: EvalOptions, endpoint: str) -> Any:
    """An `APIReranker` for ``endpoint`` with the on-disk score cache, after a connection check."""
    from rerankctl.paths import cache_dir
    from rerankctl.serve.client import APIReranker

    client = APIReranker(
        endpoint,
        batch_size=opts.batch_size,
        max_concurrency=opts.max_concurrency,
        timeout=opts.timeout,
        retries=opts.retries,
        api_key=opts.api_key,
        instruction=opts.instruction,
        cache_dir=str(cache_dir("eval-scores")),
    )
    check_endpoint(client, endpoint)
    return client


def check_endpoint(client: Any, endpoint: str) -> None:
    """Fail early, naming the endpoint, when it cannot be reached."""
    try:
        ok = client.test_connection()
    except RerankctlError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot use this endpoint"
        raise RerankctlError(
            f"endpoint {endpoint} cannot be used: {type(exc).__name__}: {exc}",
            hint="check the URL and that `rerankctl serve` (or vLLM/TEI) is running there",
        ) from None
    if ok is False:
        raise RerankctlError(
            f"endpoint {endpoint} did not answer a test rerank request",
            hint="check the URL and that `rerankctl serve` (or vLLM/TEI) is running there",
        )


def build_local(opts: EvalOptions, path: str, device: str | None = None) -> Any:
    from rerankctl.models.reranker import Qwen3Reranker

    if opts.quantize_mode:
        device = "cpu"
    return Qwen3Reranker(
        path,
        device=device or opts.device,
        dtype=opts.dtype,
        instruction=opts.instruction,
        quantize=opts.quantize_mode,
        max_length=opts.max_length,
        shared_prefix=opts.shared_prefix,
    )


def build_rerankers(opts: EvalOptions, include_local: bool = True) -> dict[str, Any]:
    """Endpoint clients (connection-checked) and, with ``include_local``, loaded local models."""
    out: dict[str, Any] = {}
    for endpoint in opts.endpoints:
        out[endpoint] = build_endpoint(opts, endpoint)
    if include_local:
        for path in opts.models:
            out[path] = build_local(opts, path)
    return out


def build_embedder(opts: EvalOptions) -> Any:
    from rerankctl.eval.two_stage import HTTPEmbedder, SentenceTransformerEmbedder

    if opts.embedding_endpoint:
        return HTTPEmbedder(opts.embedding_endpoint, model=opts.embedding_name, api_key=opts.api_key,
                            max_concurrency=opts.max_concurrency, timeout=opts.timeout)  # fmt: skip
    return SentenceTransformerEmbedder(opts.embedding_model, device=opts.device)


def _default_output(run_name: str | None) -> Path:
    from rerankctl.paths import runs_dir

    return runs_dir() / "eval" / (run_name or "eval")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _versus(extra: dict, baseline: str) -> str:
    """The progress line's comparison with the baseline, or "" without ``--baseline``.

    E.g. `` (+0.0825 vs first-stage, 95% CI [-0.0073, +0.1656]; 40 queries better, 25 worse)``.
    """
    if "delta" not in extra:
        return ""
    text = f"{extra['delta']:+.4f} vs {baseline}"
    if "vs_baseline" in extra:
        c = extra["vs_baseline"]
        text += f", 95% CI [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]; {c['better']} queries better, {c['worse']} worse"
    return f" ({text})"


def run_eval(opts: EvalOptions, progress: Callable[[str], None] = _echo) -> EvalOutcome:
    """Run the evaluation ``opts`` describes; reports are written even when a model fails.

    Raises:
        ModelEvalError: after writing the reports, when an endpoint or model failed mid-way.
    """
    from rerankctl.eval.multi import MultiModelResult, evaluate_multiple_models, evaluate_with_gpu_balance
    from rerankctl.eval.report import log_rows_to_store, to_row, write_reports

    apply_proxy(opts.proxy, opts.endpoints + ([opts.embedding_endpoint] if opts.embedding_endpoint else []))
    validate(opts)
    from rerankctl.eval.local import FIRST_STAGE

    # With --baseline the first stage is the table's first column: every model shows its delta to it.
    model_order = [FIRST_STAGE] * opts.baseline + list(opts.endpoints) + list(opts.models)

    store = writer = None
    if opts.store:
        from rerankctl.store import RunStore

        store = RunStore.open()
        writer = store.create_run(kind="eval", config=opts.recorded(), output_dir=opts.output)
    run_id = writer.id if writer else None
    rows: list[Any] = []

    baselines: dict[str, Any] = {}  # dataset -> the first stage's row (--baseline)

    def record(model: str, result: Any) -> None:
        row = to_row(result, model)
        if opts.baseline and row.kind == "two_stage" and row.dataset not in baselines:
            record(FIRST_STAGE, first_stage_row(row, result))  # the embedding ranking, once per task
        base = baselines.get(row.dataset)
        if model == FIRST_STAGE:
            baselines[row.dataset] = row
        elif base is not None:
            row.extra.update(baseline_main_score=base.main_score, delta=row.main_score - base.main_score)
            pair = (base.extra.get("per_query"), row.extra.get("per_query"))
            if pair[0] and pair[1] and len(pair[0]) == len(pair[1]):  # same queries, same order
                from rerankctl.eval.paired import paired_comparison

                row.extra["vs_baseline"] = paired_comparison(*pair)
        rows.append(row)
        progress(
            f"{model} | {row.dataset}: {row.main_metric} = {row.main_score:.4f}{_versus(row.extra, FIRST_STAGE)}"
        )
        if store is not None:
            log_rows_to_store(store, [row], run_id=run_id)
            if "delta" in row.extra:
                metric = f"{row.main_metric}_delta_vs_{FIRST_STAGE.replace('-', '_')}"
                store.log_eval(row.dataset, metric, float(row.extra["delta"]), row.model, run_id=run_id)

    outcome_errors: dict[str, str] = {}
    notes: list[str] = []
    try:
        if opts.input:
            multi = _run_local_file(opts, record)
        elif opts.two_stage:
            multi = _run_two_stage(opts, record)
        else:
            from rerankctl.eval.groups import resolve_tasks

            tasks = resolve_tasks(opts.datasets or ["chinese"])
            multi = MultiModelResult()
            balance = len(opts.models) > 1 or bool(opts.gpu_map)
            rerankers = build_rerankers(opts, include_local=not balance)
            if rerankers:
                part = evaluate_multiple_models(
                    rerankers, tasks, model_workers=opts.model_workers, batch_size=opts.batch_size,
                    workers=opts.max_concurrency, max_samples=opts.max_samples, instruction=opts.instruction,
                    on_result=record,
                )  # fmt: skip
                multi.errors.update(part.errors)
            if balance:
                part = evaluate_with_gpu_balance(
                    opts.models, tasks, gpu_map=opts.gpu_placements, max_models_per_gpu=opts.max_models_per_gpu,
                    batch_size=opts.batch_size, max_samples=opts.max_samples, instruction=opts.instruction,
                    loader=lambda path, device: build_local(opts, path, device), on_result=record,
                )  # fmt: skip
                multi.errors.update(part.errors)
                multi.notes.extend(part.notes)
                multi.placements.update(part.placements)
        outcome_errors, notes = multi.errors, multi.notes
        for note in notes:
            progress(f"note: {note}")
    except BaseException as exc:
        _finish(writer, rows, exc)
        if store is not None and writer is not None and not rows and isinstance(exc, RerankctlError):
            # Nothing was scored: a bad model path, an unreachable endpoint, an unknown task is a
            # pre-flight failure, not an evaluation; it must not leave a failed run behind.
            store.delete_run(writer.id)
        if rows:  # keep what was scored before the failure
            out_dir = Path(opts.output) if opts.output else _default_output(writer.name if writer else None)
            write_reports(out_dir, rows, model_order, plot=False, partial=True, error=str(exc))
        raise

    out_dir = Path(opts.output) if opts.output else _default_output(writer.name if writer else None)
    paths = write_reports(
        out_dir, rows, model_order, plot=opts.plot, run_id=run_id, errors=outcome_errors,
        max_samples=opts.max_samples, instruction=opts.instruction, notes=notes,
    )  # fmt: skip
    if writer is not None:
        for path in paths.values():
            writer.log_artifact("report", str(path))
    outcome = EvalOutcome(
        rows=rows, models=model_order, paths=paths, run_id=run_id, run_name=writer.name if writer else None,
        errors=outcome_errors, notes=notes,
    )  # fmt: skip
    _finish(writer, rows, None, outcome_errors)
    return outcome


def _finish(
    writer: Any, rows: list[Any], exc: BaseException | None, errors: dict[str, str] | None = None
) -> None:
    if writer is None:
        return
    if exc is not None:
        status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
        writer.finish(status, error=f"{type(exc).__name__}: {exc}")
    elif errors:
        writer.finish("failed", error="; ".join(f"{m}: {e}" for m, e in errors.items()))
    else:
        writer.finish("completed")


def _run_local_file(opts: EvalOptions, record: Callable[[str, Any], None]) -> Any:
    """``--input FILE``: every reranker scores the file; ``model_workers`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from rerankctl.eval.local import (
        FIRST_STAGE,
        evaluate_first_stage,
        evaluate_local,
        first_stage_scores,
        load_rerank_records,
    )
    from rerankctl.eval.multi import MultiModelResult

    records = load_rerank_records(
        opts.input, opts.max_samples, opts.max_chars, processor=opts.processor
    )  # validate once, before loading models
    baseline = None
    if opts.baseline:  # before any model loads: a file without a first-stage order is refused at once
        first = first_stage_scores(opts.input, opts.max_samples, processor=opts.processor)
        baseline = evaluate_first_stage(records, first, dataset_name=Path(opts.input).name)
    rerankers = build_rerankers(opts)
    if baseline is not None:  # recorded once the models load: a failed load leaves no run behind
        record(FIRST_STAGE, baseline)
    out = MultiModelResult(results={n: {} for n in rerankers})

    def run(name: str) -> None:
        try:
            result = evaluate_local(
                rerankers[name], records, batch_size=opts.batch_size, workers=opts.max_concurrency,
                instruction=opts.instruction, name=name, dataset_name=Path(opts.input).name,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - reported per model
            out.errors[name] = (
                exc.message if isinstance(exc, RerankctlError) else f"{type(exc).__name__}: {exc}"
            )
            return
        out.results[name][result.dataset] = result
        record(name, result)

    with ThreadPoolExecutor(max(1, min(opts.model_workers, len(rerankers)))) as pool:
        list(pool.map(run, list(rerankers)))
    return out


def _run_two_stage(opts: EvalOptions, record: Callable[[str, Any], None]) -> Any:
    from rerankctl.eval.groups import TWO_STAGE_DEFAULT, resolve_tasks
    from rerankctl.eval.multi import MultiModelResult
    from rerankctl.eval.two_stage import run_two_stage_eval

    tasks = resolve_tasks(opts.datasets or list(TWO_STAGE_DEFAULT))
    rerankers = build_rerankers(opts)
    embedder = build_embedder(opts)
    run_two_stage_eval(
        rerankers, tasks, embedder, top_k=opts.top_k, batch_size=opts.batch_size, workers=opts.max_concurrency,
        max_samples=opts.max_samples, instruction=opts.instruction, on_result=lambda r: record(r.model, r),
    )  # fmt: skip
    return MultiModelResult(results={n: {} for n in rerankers})


def first_stage_row(row: Any, result: Any) -> Any:
    """The first stage's own scores of a two-stage task (the embedding ranking), as a report row."""
    from rerankctl.eval.local import FIRST_STAGE
    from rerankctl.eval.report import ResultRow

    return ResultRow(
        model=FIRST_STAGE, dataset=row.dataset, main_metric=row.main_metric,
        main_score=result.first_stage[row.main_metric], metrics=dict(result.first_stage), kind="first_stage",
        extra={"embedder": result.embedder, "n_queries": result.n_queries},
    )  # fmt: skip
