"""Run MTEB reranking tasks with the ``mteb`` package's own data loading and scoring.

Our reranker (a local model, an HTTP endpoint or a function) is wrapped as an mteb
cross-encoder (`RerankerCrossEncoder`, mteb's ``CrossEncoderProtocol``). mteb's
``SearchCrossEncoderWrapper`` then hands it every (query, candidate) pair of the task's
``top_ranked`` lists in one ``predict`` call; we regroup the pairs by query so each query's
candidates go to the reranker together (one request per query for an endpoint), and mteb
computes the metrics. The main score is therefore exactly what the MTEB leaderboard shows:
MAP@1000 for most reranking tasks, MRR@10 / nDCG@10 where the task's metadata says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rerankctl.errors import RerankctlError, UsageError
from rerankctl.eval.scoring import GroupScorer, as_scorer

log = logging.getLogger(__name__)


@dataclass
class TaskScore:
    """The result of one task for one model.

    ``metrics`` holds mteb's scores averaged over the task's evaluated subsets and splits
    (``map_at_1000``, ``mrr_at_10``, ``ndcg_at_10``, ``precision_at_5``, ``recall_at_5``, ...).
    """

    task: str
    model: str
    main_metric: str
    main_score: float
    metrics: dict[str, float] = field(default_factory=dict)
    n_queries: int = 0
    n_pairs: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RerankerCrossEncoder:
    """An mteb ``CrossEncoderProtocol`` model backed by a `GroupScorer`."""

    def __init__(self, scorer: GroupScorer) -> None:
        from mteb.models import ModelMeta

        self.scorer = scorer
        # mteb wants "org/name"-like names for its result paths; we never write mteb's cache.
        safe = scorer.name.replace("://", "_").replace("/", "_").replace(":", "_")
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={"name": f"rerankctl/{safe}", "modalities": ["text"]}
        )

    def predict(
        self,
        inputs1: Any,
        inputs2: Any,
        *,
        task_metadata: Any = None,
        hf_split: str = "",
        hf_subset: str = "",
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Scores of the aligned (query, document) pairs, in pair order."""
        import numpy as np

        queries = [text for batch in inputs1 for text in batch["text"]]
        docs = [text for batch in inputs2 for text in batch["text"]]
        if len(queries) != len(docs):
            raise ValueError(f"mteb gave {len(queries)} queries for {len(docs)} documents")
        # Regroup by query text in first-seen order; mteb lists a query's candidates together.
        positions: dict[str, list[int]] = {}
        for i, query in enumerate(queries):
            positions.setdefault(query, []).append(i)
        groups = [(q, [docs[i] for i in idx]) for q, idx in positions.items()]
        scores = self.scorer.score_groups(groups)
        out = np.zeros(len(docs), dtype=np.float64)
        for idx, group_scores in zip(positions.values(), scores, strict=True):
            out[idx] = group_scores
        return out


def _find_mock_task(name: str) -> Any | None:
    """mteb's offline mock tasks are not in the registry; find one by its metadata name."""
    import importlib
    import pkgutil

    try:
        package = importlib.import_module("mteb.mocks.mock_tasks")
    except ImportError:
        return None
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            meta = getattr(obj, "metadata", None)
            if isinstance(obj, type) and getattr(meta, "name", None) == name:
                return obj()
    return None


def get_task(name_or_task: Any) -> Any:
    """An mteb task object from a registry name, a mock task name, or a task object."""
    if not isinstance(name_or_task, str):
        return name_or_task
    import mteb

    try:
        return mteb.get_task(name_or_task)
    except KeyError:
        mock = _find_mock_task(name_or_task)
        if mock is not None:
            return mock
        import difflib

        names = [t.metadata.name for t in mteb.get_tasks(task_types=["Reranking", "Retrieval"])]
        close = difflib.get_close_matches(name_or_task, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `rerankctl eval --list-datasets`"
        raise UsageError(f"unknown MTEB task or dataset group '{name_or_task}'", hint=hint) from None


def _load(task: Any) -> None:
    """Load a task's data once (mteb then leaves it loaded), with a clear error when offline."""
    import datasets

    datasets.disable_progress_bars()  # mteb's own bars are off too; a CLI prints its own progress
    if getattr(task, "data_loaded", False):
        return
    try:
        task.load_data()
    except RerankctlError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for "could not fetch"
        raise RerankctlError(
            f"could not load the data of MTEB task {task.metadata.name}: {type(exc).__name__}: {exc}",
            hint="check the network, or pass --proxy URL (or set HF_ENDPOINT to a mirror)",
        ) from exc
    if hasattr(task, "convert_v1_dataset_format_to_v2"):
        task.convert_v1_dataset_format_to_v2(num_proc=None)


def subsample_task(task: Any, max_samples: int) -> int:
    """Keep the first ``max_samples`` queries (that have a judged document) of every split.

    Returns the number of queries kept in total. The corpus shrinks to the kept candidates.
    """
    kept_total = 0
    for subset_data in task.dataset.values():
        for data in list(subset_data.values()):
            if not isinstance(data, dict) or "queries" not in data:
                continue
            qrels, top = data["relevant_docs"], data.get("top_ranked") or {}
            keep = [qid for qid in data["queries"]["id"] if qid in qrels and (not top or qid in top)]
            keep = set(keep[:max_samples])
            data["queries"] = data["queries"].filter(lambda row, keep=keep: row["id"] in keep)
            data["relevant_docs"] = {q: v for q, v in qrels.items() if q in keep}
            if top:
                data["top_ranked"] = {q: v for q, v in top.items() if q in keep}
                docs = {d for v in data["top_ranked"].values() for d in v}
                docs |= {d for v in data["relevant_docs"].values() for d in v}
                data["corpus"] = data["corpus"].filter(lambda row, docs=docs: row["id"] in docs)
            kept_total += len(keep)
    return kept_total


def _average_scores(task_result: Any) -> dict[str, float]:
    """Mean of every numeric score over the evaluated splits and subsets (``nauc_*`` dropped)."""
    import math

    sums: dict[str, list[float]] = {}
    for split_scores in task_result.scores.values():
        for subset in split_scores:
            for key, value in subset.items():
                if key.startswith("nauc_") or isinstance(value, (str, list, dict, bool)):
                    continue
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue
                if not math.isnan(value):
                    sums.setdefault(key, []).append(value)
    return {k: sum(v) / len(v) for k, v in sums.items()}


class MTEBRerankEvaluator:
    """Evaluate one reranker on MTEB reranking tasks.

    Args:
        reranker: a `Qwen3Reranker`, an `APIReranker`, a `GroupScorer`, or ``fn(query, docs)``.
        batch_size: pairs per forward pass for local models.
        workers: queries scored at the same time (concurrent requests for endpoints).
        instruction: instruction for local models (endpoints carry their own).
        name: the model's name in reports.
    """

    def __init__(
        self,
        reranker: Any,
        batch_size: int = 32,
        workers: int = 4,
        instruction: str | None = None,
        name: str | None = None,
    ) -> None:
        self.scorer = as_scorer(
            reranker, batch_size=batch_size, workers=workers, instruction=instruction, name=name
        )
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.scorer.name

    def evaluate(self, task: Any, max_samples: int | None = None) -> TaskScore:
        """Run one task (name or mteb task object) and return mteb's scores."""
        import mteb

        task = get_task(task)
        _load(task)
        if max_samples is not None:
            if max_samples < 1:
                raise UsageError(f"--max-samples must be at least 1 (got {max_samples})")
            subsample_task(task, max_samples)
        model = RerankerCrossEncoder(self.scorer)
        pairs_before = self.scorer.pairs_scored
        start = time.perf_counter()
        result = mteb.evaluate(
            model,
            task,
            cache=None,
            co2_tracker=False,
            show_progress_bar=False,
            encode_kwargs={"batch_size": self.batch_size, "show_progress_bar": False},
        )
        seconds = time.perf_counter() - start
        task_result = result.task_results[0]
        metrics = _average_scores(task_result)
        n_queries = sum(
            len(data["queries"])
            for sub in task.dataset.values()
            for data in sub.values()
            if isinstance(data, dict)
        )
        return TaskScore(
            task=task.metadata.name,
            model=self.name,
            main_metric=task.metadata.main_score,
            main_score=float(task_result.get_score()),
            metrics=metrics,
            n_queries=n_queries,
            n_pairs=self.scorer.pairs_scored - pairs_before,
            seconds=seconds,
        )

    def evaluate_multiple(
        self,
        tasks: Iterable[Any],
        max_samples: int | None = None,
        on_result: Callable[[TaskScore], None] | None = None,
    ) -> dict[str, TaskScore]:
        """Run tasks (group names such as ``"chinese"``, task names, or task objects) in order.

        ``on_result`` is called after each task, so results reach the run store as they come.
        """
        from rerankctl.eval.groups import resolve_tasks

        items: list[Any] = []
        for item in tasks:
            items.extend(resolve_tasks([item]) if isinstance(item, str) else [item])
        out: dict[str, TaskScore] = {}
        for item in items:
            score = self.evaluate(item, max_samples=max_samples)
            out[score.task] = score
            if on_result is not None:
                on_result(score)
        return out
