"""Several models at once: endpoints in parallel, and local models spread over GPUs.

`evaluate_multiple_models` loads each task once and scores it with up to ``model_workers``
models at the same time. HTTP endpoints run in forked child processes: besides waiting on its
server, each model spends ~40 % of its time in pure-Python work (mteb's dataloaders and
metrics, JSON and HTTP parsing) that threads would serialise on the GIL; forked children share
the loaded task and the imported libraries for free. Other models (local torch models, whose
OpenMP pools do not survive ``fork``, and plain functions) run in threads. A model that fails
(a refused connection, a 500, a reply of the wrong shape) is dropped from the remaining tasks
and reported with its name; what the other models, and it, scored before that is kept.

`evaluate_with_gpu_balance` places local models on GPUs: by an explicit ``{model: gpu}`` map,
or on the GPUs with the most free memory, with at most ``max_models_per_gpu`` models loaded on
one GPU at a time. Without a GPU it runs on the CPU, one model at a time, and says so.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankctl.errors import RerankctlError
from rerankctl.eval.scoring import describe

log = logging.getLogger(__name__)


class ModelEvalError(RerankctlError):
    """A model (endpoint or local model) failed during evaluation; the message names it."""


@dataclass
class MultiModelResult:
    """Scores per model and task, the models that failed, and where local models ran."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    placements: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def raise_for_errors(self, kept: int | None = None) -> None:
        """Raise one `ModelEvalError` naming every failed model (after reports are written)."""
        if self.errors:
            detail = "; ".join(f"{m}: {e}" for m, e in self.errors.items())
            kept = sum(len(v) for v in self.results.values()) if kept is None else kept
            raise ModelEvalError(
                f"{len(self.errors)} model(s) failed: {detail}",
                hint=f"{kept} task result(s) already scored were kept; rerun to resume from the score cache",
            )


def _named(rerankers: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(rerankers, Mapping):
        return dict(rerankers)
    out: dict[str, Any] = {}
    for r in rerankers:
        name = describe(r)
        while name in out:  # two clients of one URL: keep both, distinguishable
            name += "'"
        out[name] = r
    return out


def _failure(exc: BaseException) -> str:
    """The one-line reason (the model's name is added by `raise_for_errors`)."""
    if isinstance(exc, RerankctlError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def evaluate_multiple_models(
    rerankers: Sequence[Any] | Mapping[str, Any],
    task_names: Iterable[Any],
    model_workers: int = 2,
    batch_size: int = 32,
    *,
    workers: int = 4,
    max_samples: int | None = None,
    instruction: str | None = None,
    on_result: Callable[[str, Any], None] | None = None,
    processes: bool | None = None,
) -> MultiModelResult:
    """Evaluate several rerankers on MTEB tasks, ``model_workers`` models at a time.

    Args:
        rerankers: reranker objects or functions (a list, or a ``{name: reranker}`` mapping).
        task_names: group names, task names or mteb task objects.
        model_workers: models scored at the same time.
        batch_size, workers, instruction: see `MTEBRerankEvaluator`.
        on_result: called ``(model_name, TaskScore)`` after each task of each model, in this process.
        processes: run each model in a forked process (default: when ``model_workers > 1``, every
            model is an `APIReranker` and the platform has ``fork``); False: threads.
    """
    from rerankctl.eval.groups import resolve_tasks
    from rerankctl.eval.mteb_runner import MTEBRerankEvaluator, _load, get_task, subsample_task

    named = _named(rerankers)
    evaluators = {
        name: MTEBRerankEvaluator(
            r, batch_size=batch_size, workers=workers, instruction=instruction, name=name
        )
        for name, r in named.items()
    }
    out = MultiModelResult(results={name: {} for name in named})
    lock = threading.Lock()
    items: list[Any] = []
    for item in task_names:
        items.extend(resolve_tasks([item]) if isinstance(item, str) else [item])
    width = max(1, min(model_workers, len(named)))
    use_processes = processes if processes is not None else (width > 1 and _forkable(named.values()))

    def record(name: str, task: Any, score: Any = None, error: str | None = None) -> None:
        if error is not None:
            log.warning("model %s failed on %s: %s", name, task.metadata.name, error)
            with lock:
                out.errors[name] = f"{error} (during {task.metadata.name})"
            return
        with lock:
            out.results[name][score.task] = score
        if on_result is not None:
            on_result(name, score)

    with ThreadPoolExecutor(width, thread_name_prefix="rerankctl-model") as pool:
        for item in items:
            task = get_task(item)
            _load(task)  # once per task, shared by every model (forked children inherit it)
            if max_samples is not None:
                subsample_task(task, max_samples)
            alive = [n for n in named if n not in out.errors]
            if use_processes:
                _run_forked(alive, width, task, evaluators, named, record)
            else:

                def run(name: str, task: Any = task) -> None:
                    try:
                        score = evaluators[name].evaluate(task)
                    except Exception as exc:  # noqa: BLE001 - reported per model, others go on
                        record(name, task, error=_failure(exc))
                        return
                    record(name, task, score)

                list(pool.map(run, alive))
            if hasattr(task, "unload_data"):
                task.unload_data()
    return out


def _forkable(rerankers: Iterable[Any]) -> bool:
    """Whether every model is an HTTP endpoint client and this platform can fork."""
    import multiprocessing

    from rerankctl.serve.client import APIReranker

    return "fork" in multiprocessing.get_all_start_methods() and all(
        isinstance(r, APIReranker) for r in rerankers
    )


def _child(conn: Any, evaluator: Any, reranker: Any, task: Any) -> None:
    """In a forked child: score one task with one model, send ``(score, error)`` back."""
    try:
        reset = getattr(reranker, "after_fork", None)
        if reset is not None:
            reset()
        conn.send((evaluator.evaluate(task), None))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it against the model
        conn.send((None, _failure(exc)))
    finally:
        conn.close()


def _run_forked(
    names: list[str],
    width: int,
    task: Any,
    evaluators: Mapping[str, Any],
    rerankers: Mapping[str, Any],
    record: Callable[..., None],
) -> None:
    """Score ``task`` with each model in its own forked process, ``width`` at a time."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    pending = list(names)
    running: dict[Any, tuple[str, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < width:
                name = pending.pop(0)
                receiver, sender = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_child, args=(sender, evaluators[name], rerankers[name], task), daemon=True
                )
                # Unflushed output would be written twice (the child flushes its copy at exit).
                sys.stdout.flush()
                sys.stderr.flush()
                with warnings.catch_warnings():
                    # Python 3.12+ warns when a threaded process forks; the child touches no lock
                    # of another thread: it opens its own event loop, connections and cache handle.
                    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                    proc.start()
                sender.close()
                running[receiver] = (name, proc)
            for conn in wait(list(running)):
                name, proc = running.pop(conn)
                try:
                    score, error = conn.recv()
                except EOFError:  # died without an answer (killed, out of memory)
                    proc.join()
                    score, error = None, f"evaluation process died (exit code {proc.exitcode})"
                conn.close()
                proc.join()
                record(name, task, score, error)
    finally:
        for conn, (_, proc) in running.items():  # Ctrl-C or an error here: no orphans
            proc.terminate()
            proc.join(5)
            conn.close()


def _default_loader(path: str, device: str) -> Any:
    from rerankctl.models.reranker import Qwen3Reranker

    return Qwen3Reranker(path, device=device)


def plan_gpus(
    model_paths: Sequence[str],
    gpu_map: Mapping[str, int] | None = None,
    max_models_per_gpu: int = 1,
    source: Any = None,
) -> tuple[list[str], list[str]]:
    """The device slots models are placed on (``"cuda:i"`` repeated per allowed model), and notes.

    With ``gpu_map`` every listed GPU gets ``max_models_per_gpu`` slots; otherwise the GPUs are
    ranked by free memory (`rerankctl.gpu.pick.rank_gpus`) and as many as needed are used. No
    GPU readable: one ``"cpu"`` slot and a note.
    """
    from rerankctl.gpu.pick import rank_gpus

    per = max(int(max_models_per_gpu), 1)
    if gpu_map:
        gpus = sorted(set(int(g) for g in gpu_map.values()))
        return [f"cuda:{g}" for g in gpus for _ in range(per)], []
    if source is None:
        from rerankctl.gpu.fake import default_source

        source = default_source()
    ok, why = source.status()
    ranked = rank_gpus(source.snapshot_all()) if ok else []
    if not ranked:
        return ["cpu"], [f"no GPU available ({why}); evaluating local models on the CPU, one at a time"]
    needed = -(-len(model_paths) // per)  # ceil: no more GPUs than the models need
    chosen = ranked[: max(needed, 1)]
    notes = [
        "GPUs by free memory: "
        + ", ".join(f"{s.index} ({(s.mem_free or 0) / 2**30:.1f} GiB free)" for s in chosen)
    ]
    # Interleave so the first models go to different GPUs (the freest first).
    return [f"cuda:{s.index}" for _ in range(per) for s in chosen], notes


def evaluate_with_gpu_balance(
    model_paths: Sequence[str],
    tasks: Iterable[Any],
    gpu_map: Mapping[str, int] | None = None,
    max_models_per_gpu: int = 1,
    *,
    batch_size: int = 32,
    workers: int = 1,
    max_samples: int | None = None,
    instruction: str | None = None,
    source: Any = None,
    loader: Callable[[str, str], Any] | None = None,
    on_result: Callable[[str, Any], None] | None = None,
) -> MultiModelResult:
    """Evaluate local model directories on MTEB tasks, spread over GPUs.

    Each model is loaded on a free slot (see `plan_gpus`), evaluated on every task, then
    released, so at most ``max_models_per_gpu`` models sit on one GPU at a time. ``loader(path,
    device)`` builds the reranker (default: `Qwen3Reranker`). Models named in ``gpu_map`` run
    only on their GPU.
    """
    from rerankctl.errors import UsageError
    from rerankctl.eval.mteb_runner import MTEBRerankEvaluator

    loader = loader or _default_loader
    tasks = list(tasks)
    if gpu_map:
        missing = [str(p) for p in model_paths if str(p) not in gpu_map]
        if missing:
            raise UsageError(
                f"--gpu-map does not place {', '.join(missing)}", hint="give every model a GPU, e.g. DIR=0"
            )
    slots, notes = plan_gpus(model_paths, gpu_map, max_models_per_gpu, source)
    out = MultiModelResult(results={str(p): {} for p in model_paths}, notes=notes)
    for note in notes:
        log.info(note)
    free: dict[str, queue.Queue[str]] = {}
    for slot in slots:
        free.setdefault(slot, queue.Queue()).put(slot)
    any_slot: queue.Queue[str] = queue.Queue()
    for slot in slots:
        any_slot.put(slot)
    lock = threading.Lock()

    def run(path: str) -> None:
        name = str(path)
        # With a map every model waits for a slot on its own GPU; otherwise on any GPU.
        pool = free[f"cuda:{int(gpu_map[name])}"] if gpu_map else any_slot
        device = pool.get()
        reranker = evaluator = None
        try:
            with lock:
                out.placements[name] = device
            reranker = loader(name, device)
            evaluator = MTEBRerankEvaluator(
                reranker,
                batch_size=batch_size,
                workers=workers,
                instruction=instruction,
                name=Path(name).name or name,
            )
            for task in tasks:
                score = evaluator.evaluate(task, max_samples=max_samples)
                with lock:
                    out.results[name][score.task] = score
                if on_result is not None:
                    on_result(name, score)
        except Exception as exc:  # noqa: BLE001 - reported per model
            with lock:
                out.errors[name] = _failure(exc)
        finally:
            # Drop every reference to the model before the slot is reused.
            reranker = evaluator = None  # noqa: F841
            _release_memory(device)
            pool.put(device)

    # One thread per model: the slot queues, not the pool, bound how many run at once.
    with ThreadPoolExecutor(max(len(model_paths), 1), thread_name_prefix="rerankctl-gpu") as executor:
        list(executor.map(run, [str(p) for p in model_paths]))
    return out


def _release_memory(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - best effort
            pass
