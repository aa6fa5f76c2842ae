"""The original scripts' spellings, mapped to rerankctl's canonical names (one table).

Users switching from the seed tool keep their flags, preset keys and keyword arguments:
``--loss-type lambda_loss``, ``--infonce-mode posset``, ``reward_type='ndcg'``,
``ContrastiveSFTTrainer(yes_token_id=...)``. Every alias maps to exactly one canonical name here;
the config validators (``field_validator(mode="before")``) and the Python API adapters
(:mod:`rerankctl.api`) both read this table, so nothing else spells an alias.

Pure Python: the CLI reads it before any heavy import.
"""

from __future__ import annotations

from typing import Any

#: Option values: field name -> {alias: canonical}.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    # train sft --loss-type (the registry's short aliases too, so the config accepts them before torch loads)
    "loss_type": {
        "lambda": "lambdaloss",
        "p_listmle": "plistmle",
        "pointwise": "bce",
        "kl_distill": "kl",
        "lambda_loss": "lambdaloss",
        "list_mle": "listmle",
        "p_list_mle": "plistmle",
        "plist_mle": "plistmle",
        "list_net": "listnet",
        "info_nce": "infonce",
        "rank_net": "ranknet",
        "binary_cross_entropy": "bce",
        "cross_entropy": "ce",
        "marginmse": "margin_mse",
    },
    # train rl --loss-type
    "rl_loss_type": {"drgrpo": "dr_grpo", "dr-grpo": "dr_grpo", "dr.grpo": "dr_grpo"},
    "infonce_mode": {
        "posset": "positive_set",
        "pos_set": "positive_set",
        "perpos": "per_positive",
        "per_pos": "per_positive",
    },
    "reward_type": {
        "ndcg": "ndcg_based",
        "rank": "rank_based",
        "auc": "rank_based",
        "recall": "recall_based",
        "score": "score_based",
    },
}

#: Keyword arguments of the Python API: public name -> {seed keyword: rerankctl keyword}.
KEYWORD_ALIASES: dict[str, dict[str, str]] = {
    "RerankDataset": {"path": "source", "data_path": "source", "num_docs": "n_docs", "num_pos": "n_pos"},
    "ContrastiveSFTTrainer": {"yes_token_id": "yes_id", "no_token_id": "no_id"},
    "RLTrainer": {"yes_token_id": "yes_id", "no_token_id": "no_id"},
    "MTEBRerankEvaluator": {"rerank_fn": "reranker", "model": "reranker"},
}

#: Command-line flags: alias -> canonical (the singular the seed tool used).
FLAG_ALIASES: dict[str, str] = {"--endpoint": "--endpoints"}


def canonical(field: str, value: Any) -> Any:
    """``value`` with a seed spelling replaced by the canonical one (other values pass through)."""
    if not isinstance(value, str):
        return value
    table = VALUE_ALIASES.get(field, {})
    key = value.strip()
    return table.get(key, table.get(key.lower(), value))


def rename_keywords(api_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the seed keyword names of ``api_name`` renamed; giving both spellings is an error."""
    table = KEYWORD_ALIASES.get(api_name, {})
    out = dict(kwargs)
    for alias, name in table.items():
        if alias in out:
            if name in out:
                raise TypeError(f"{api_name}() got both {alias!r} and {name!r} (the same argument)")
            out[name] = out.pop(alias)
    return out
