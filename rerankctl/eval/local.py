"""Evaluate a reranker on a local file in the rerank format (``--input data.jsonl``).

Each record is one query with its candidates (``pos``/``neg`` or ``docs``/``labels``). The
reranker scores every candidate, the candidates are ranked by score, and the numpy metrics of
`rerankctl.eval.metrics` give MRR, MAP, NDCG@k, P@k and R@k per query, averaged over queries
(graded labels use linear nDCG gains, as trec_eval and mteb do).
Queries without a relevant candidate are left out (as mteb does), and counted.

`records_to_mteb_task` turns the same records into an mteb reranking task, so a local file can
also be scored by mteb itself (the tests use it to check that both agree).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rerankctl.data.limits import DEFAULT_MAX_CHARS
from rerankctl.errors import DataError, UsageError
from rerankctl.eval.scoring import as_scorer

log = logging.getLogger(__name__)

MAIN_METRIC = "map"


@dataclass
class LocalResult:
    """Averaged metrics of one model on one local file."""

    dataset: str
    model: str
    metrics: dict[str, float]
    main_metric: str = MAIN_METRIC
    n_queries: int = 0
    n_pairs: int = 0
    skipped_no_positive: int = 0
    seconds: float = 0.0
    per_query: list[dict[str, float]] = field(default_factory=list, repr=False)

    @property
    def main_score(self) -> float:
        return self.metrics[self.main_metric]

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["main_score"] = self.main_score
        if not per_query:
            out.pop("per_query")
        return out


def load_rerank_records(
    path: str | Path,
    max_samples: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    processor: str | None = None,
) -> list[Any]:
    """Validated `RerankRecord`s of a rerank-format file (errors name file, line and field).

    Text fields are cut to ``max_chars`` characters as they are read (data/limits.py);
    ``processor`` (``FILE:CLASS``, data/processor.py) rewrites each record first.
    """
    from rerankctl.data.validate import ReadCounts, load_records

    counts = ReadCounts()
    records, _ = load_records(
        str(path), kind="rerank", max_chars=max_chars, counts=counts, processor=processor
    )
    if counts.dropped:
        log.warning("%s: the record processor dropped %d record(s)", path, counts.dropped)
    if counts.cut:
        log.warning(
            "%s: %d record(s) cut to %d characters per field (--max-chars)", path, counts.cut, max_chars
        )
    if max_samples is not None:
        if max_samples < 1:
            raise UsageError(f"--max-samples must be at least 1 (got {max_samples})")
        records = records[:max_samples]
    return records


def _ranking(scores: Sequence[float]) -> list[int]:
    # Stable: ties keep input order, matching Qwen3Reranker.rerank.
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def score_records(records: Sequence[Any], scorer: Any) -> list[list[float]]:
    """Scores of every record's documents, grouped by instruction so each group is one call."""
    out: list[list[float] | None] = [None] * len(records)
    by_instruction: dict[str | None, list[int]] = {}
    for i, rec in enumerate(records):
        by_instruction.setdefault(rec.instruction, []).append(i)
    for instruction, idx in by_instruction.items():
        groups = [(records[i].query, records[i].docs) for i in idx]
        for i, scores in zip(idx, scorer.score_groups(groups, instruction=instruction), strict=True):
            out[i] = scores
    return out  # type: ignore[return-value]


def evaluate_local(
    reranker: Any,
    data: str | Path | Sequence[Any],
    *,
    batch_size: int = 32,
    workers: int = 4,
    instruction: str | None = None,
    max_samples: int | None = None,
    ks: Sequence[int] = (1, 5, 10),
    name: str | None = None,
    dataset_name: str | None = None,
) -> LocalResult:
    """Score a rerank-format file (or already-loaded records) and average the metrics.

    ``instruction`` applies to records without their own ``instruction`` field.
    """
    if isinstance(data, (str, Path)):
        dataset_name = dataset_name or Path(data).name
        records = load_rerank_records(data, max_samples)
    else:
        records = list(data)[:max_samples] if max_samples else list(data)
        dataset_name = dataset_name or "records"
    scorer = as_scorer(reranker, batch_size=batch_size, workers=workers, instruction=instruction, name=name)
    judged = [r for r in records if any(label > 0 for label in r.labels)]
    skipped = len(records) - len(judged)
    if not judged:
        raise DataError("no record has a relevant document (a pos, or a label > 0)", path=str(dataset_name))
    start = time.perf_counter()
    all_scores = score_records(judged, scorer)
    seconds = time.perf_counter() - start
    return ranked_result(judged, all_scores, ks, dataset_name, scorer.name, skipped, seconds)


def ranked_result(
    judged: Sequence[Any],
    all_scores: Sequence[Sequence[float]],
    ks: Sequence[int],
    dataset_name: str,
    model: str,
    skipped: int = 0,
    seconds: float = 0.0,
) -> LocalResult:
    """The metrics of the records ranked by ``all_scores`` (one list per record), averaged over queries."""
    from rerankctl.eval.metrics import compute_all_metrics

    per_query = []
    for rec, scores in zip(judged, all_scores, strict=True):
        positives = [i for i, label in enumerate(rec.labels) if label > 0]
        graded = any(label not in (0.0, 1.0) for label in rec.labels)
        # Linear gains for graded labels: trec_eval's ndcg_cut, which mteb's nDCG is.
        metrics = compute_all_metrics(
            _ranking(scores),
            positives,
            ks=tuple(ks),
            relevance=list(rec.labels) if graded else None,
            gain="linear",
        )
        per_query.append({k: float(v) for k, v in metrics.items()})
    keys = per_query[0].keys()
    averaged = {k: sum(q[k] for q in per_query) / len(per_query) for k in keys}
    return LocalResult(
        dataset=dataset_name,
        model=model,
        metrics=averaged,
        n_queries=len(judged),
        n_pairs=sum(len(r.docs) for r in judged),
        skipped_no_positive=skipped,
        seconds=seconds,
        per_query=per_query,
    )


#: The name the first stage's own order goes by in reports and the run store (``eval --baseline``).
FIRST_STAGE = "first-stage"


def first_stage_scores(
    path: str | Path, max_samples: int | None = None, processor: str | None = None
) -> list[list[float]]:
    """Per record of a rerank file, the first stage's scores of its documents (``eval --baseline``).

    The first stage's order is what the file says of it: the given scores (``scores``, or
    ``pos_scores``/``neg_scores``), else the order of a ``docs`` list (the first document ranks
    first: scores 0, -1, -2, ...). A ``pos``/``neg`` record without scores has no such order (its
    positives always come first), so it is refused, naming the line. With a ``processor``, the
    record it returns is what is read.
    """
    from rerankctl.data.validate import parse_rows

    out: list[list[float]] = []
    for row, record, error in parse_rows(str(path), "rerank", check_images=False, processor=processor):
        if max_samples is not None and len(out) >= max_samples:
            break
        if error is not None:
            raise error
        if record.teacher_scores is not None:
            out.append([float(x) for x in record.teacher_scores])
        elif isinstance(row.obj, dict) and "docs" in row.obj:
            out.append([-float(i) for i in range(len(record.docs))])
        else:
            raise DataError(
                "--baseline: this record carries no first-stage order (pos/neg lists put positives first)",
                hint="give `docs` in the first stage's order, or `pos_scores`/`neg_scores` (or `scores`)",
                path=str(path),
                line=row.line,
            )
    return out


def evaluate_first_stage(
    records: Sequence[Any],
    scores: Sequence[Sequence[float]],
    *,
    ks: Sequence[int] = (1, 5, 10),
    dataset_name: str = "records",
) -> LocalResult:
    """The metrics of the records in the first stage's order (``scores`` from :func:`first_stage_scores`).

    Records without a relevant document are left out, as :func:`evaluate_local` does, so both
    results average over the same queries.
    """
    pairs = [(r, s) for r, s in zip(records, scores, strict=True) if any(label > 0 for label in r.labels)]
    if not pairs:
        raise DataError("no record has a relevant document (a pos, or a label > 0)", path=str(dataset_name))
    judged, judged_scores = zip(*pairs, strict=True)
    return ranked_result(judged, judged_scores, ks, dataset_name, FIRST_STAGE, len(records) - len(pairs))


_TASK_METADATA = {
    "description": "A local rerank-format file, scored by mteb.",
    "reference": "https://github.com/embeddings-benchmark/mteb",
    "dataset": {"path": "local", "revision": "local"},
    "type": "Reranking",
    "category": "t2t",
    "eval_splits": ["test"],
    "eval_langs": ["eng-Latn"],
    "main_score": "map_at_1000",
    "date": ("2025-01-01", "2025-01-01"),
    "dialect": [],
    "domains": [],
    "task_subtypes": [],
    "license": "not specified",
    "annotations_creators": "derived",
    "modalities": ["text"],
    "sample_creation": "found",
    "bibtex_citation": "",
}


def records_to_mteb_task(records: Sequence[Any], name: str = "LocalReranking") -> Any:
    """An mteb reranking task holding ``records`` (queries, corpus, qrels, candidate lists).

    Document ids are per record, so the same text under two queries stays two candidates.
    """
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.abstasks.task_metadata import TaskMetadata

    queries, corpus, qrels, top = [], [], {}, {}
    for qi, rec in enumerate(records):
        qid = f"q{qi}"
        queries.append({"id": qid, "text": rec.query})
        top[qid] = []
        qrels[qid] = {}
        for di, (doc, label) in enumerate(zip(rec.docs, rec.labels, strict=True)):
            did = f"q{qi}-d{di}"
            corpus.append({"id": did, "text": doc, "title": ""})
            top[qid].append(did)
            qrels[qid][did] = int(round(label))
    split = RetrievalSplitData(
        queries=Dataset.from_list(queries),
        corpus=Dataset.from_list(corpus),
        relevant_docs=qrels,
        top_ranked=top,
    )
    metadata = TaskMetadata(name=name, **_TASK_METADATA)

    class LocalRerankingTask(AbsTaskRetrieval):
        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    LocalRerankingTask.metadata = metadata
    return LocalRerankingTask()
