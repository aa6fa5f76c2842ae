"""Named groups of MTEB reranking tasks (``--datasets chinese``) and their registry details.

Every name is a task in the installed ``mteb`` registry (a unit test checks this), so
``--datasets english`` runs mteb's own task definitions and scoring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rerankctl.errors import UsageError

# The C-MTEB reranking set the Qwen3-Reranker card reports.
CHINESE = ("T2Reranking", "MMarcoReranking", "CMedQAv1-reranking", "CMedQAv2-reranking")
# MTEB(eng) reranking tasks: the classic four plus two newer English ones.
ENGLISH = (
    "AskUbuntuDupQuestions",
    "SciDocsRR",
    "StackOverflowDupQuestions",
    "MindSmallReranking",
    "WebLINXCandidatesReranking",
    "BuiltBenchReranking",
)
# MMTEB's multilingual reranking tasks.
MULTILINGUAL = ("MIRACLReranking", "WikipediaRerankingMultilingual", "XGlueWPRReranking")
# Single non-English, non-Chinese languages: French (2), Japanese, Russian, Slovak.
OTHER = ("AlloprofReranking", "SyntecReranking", "JQaRAReranking", "RuBQReranking", "SkQuadReranking")
# CodeRAG-Bench reranking tasks.
CODE = (
    "CodeRAGLibraryDocumentationSolutions",
    "CodeRAGOnlineTutorials",
    "CodeRAGProgrammingSolutions",
    "CodeRAGStackoverflowPosts",
)

GROUPS: dict[str, tuple[str, ...]] = {
    "chinese": CHINESE,
    "english": ENGLISH,
    "multilingual": MULTILINGUAL,
    "other": OTHER,
    "code": CODE,
}
GROUPS["all"] = tuple(name for group in GROUPS.values() for name in group)

# Retrieval tasks for two-stage evaluation (embedding first stage, then the reranker).
TWO_STAGE_DEFAULT = ("T2Retrieval", "MMarcoRetrieval")


def resolve_tasks(names: Iterable[str]) -> list[str]:
    """Expand group names into task names, keeping order and dropping repeats.

    A name that is not a group is taken as a task name as given (checked later against the
    registry, where a typo gets a suggestion).
    """
    out: list[str] = []
    for raw in names:
        for name in (part.strip() for part in raw.split(",")):
            if not name:
                continue
            tasks = GROUPS.get(name.lower(), (name,))
            out.extend(t for t in tasks if t not in out)
    if not out:
        raise UsageError("no datasets given", hint=f"use a group ({', '.join(GROUPS)}) or an MTEB task name")
    return out


@dataclass(frozen=True)
class TaskInfo:
    """What ``--list-datasets`` shows for one task."""

    name: str
    main_score: str
    languages: tuple[str, ...]
    task_type: str


def task_info(names: Iterable[str]) -> dict[str, TaskInfo]:
    """Registry details of ``names`` (imports mteb; about 3 s)."""
    import mteb

    out: dict[str, TaskInfo] = {}
    for task in mteb.get_tasks(tasks=list(names)):
        meta = task.metadata
        out[meta.name] = TaskInfo(
            name=meta.name,
            main_score=meta.main_score,
            languages=tuple(sorted({lang.split("-")[0] for lang in meta.languages})),
            task_type=meta.type,
        )
    return out


def list_datasets_rows() -> list[dict[str, str]]:
    """One row per (group, task) for ``--list-datasets`` (``all`` is not repeated)."""
    info = task_info(GROUPS["all"])
    rows = []
    for group, names in GROUPS.items():
        if group == "all":
            continue
        for name in names:
            ti = info.get(name)
            rows.append(
                {
                    "group": group,
                    "task": name,
                    "languages": ",".join(ti.languages) if ti else "?",
                    "main_score": ti.main_score if ti else "not in the installed mteb",
                }
            )
    return rows
