"""The original (seed) Qwen3-Reranker scripts' training files: ``positives``/``negatives`` and graded tiers.

``rerankctl data validate`` and the trainers read these files as they are (:func:`rerankctl.data.formats.parse_seed`);
``data convert --from seed`` writes them in rerankctl's own shape (``pos``/``neg``, or ``docs``/``labels``
when strong positives make the labels graded). The negative tiers' hardness grades
(:data:`rerankctl.data.formats.SEED_HARDNESS`, which ``--sampling hard`` ranks negatives by when there
are no teacher scores) have no place in that shape and are not written: train on the seed file itself
to keep them.
"""

from __future__ import annotations

from typing import Any

from rerankctl.data.formats import RecordError, is_seed_rerank, parse_seed

NAME = "seed"
KIND = "rerank"
DESCRIPTION = (
    "The original Qwen3-Reranker scripts' JSONL (positives/negatives, neg_very_hard/neg_hard/neg_medium, ...)"
)
SOURCE = (
    '{"query": str, "positives"|"positive"|"answer"|"positives_strong": [str], '
    '"negatives"|"negative"|"neg_very_hard"|"neg_hard"|"neg_medium"|"statement_*_negatives"?: [str]}'
)


def convert(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict) and "query" in obj and not is_seed_rerank(obj):
        raise RecordError(
            "positives", "missing", hint="expected the seed keys (positives/negatives, neg_hard, ...)"
        )
    return [parse_seed(obj).to_json()]
