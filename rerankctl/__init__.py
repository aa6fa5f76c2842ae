"""rerankctl: train, serve and evaluate Qwen3 rerankers and reward models.

The public names of every layer are importable from here (``from rerankctl import
Qwen3Reranker, lambda_loss, compute_all_metrics``). They load on first use (PEP 562
``__getattr__``), so ``import rerankctl`` imports no torch, and neither does importing a name
whose module does not need it (``Qwen3Reranker`` loads torch when it loads a model).
The original scripts' names (``ContrastiveSFTTrainer(yes_token_id=...)``, ...) come from
:mod:`rerankctl.api`, thin adapters over the classes below.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LOSSES = (
    "bce_loss", "bradley_terry_loss", "ce_loss", "infonce_loss", "kl_distill_loss", "lambda_loss",
    "list_mle", "list_net", "margin_mse_loss", "margin_ranking_loss", "p_list_mle", "ranknet_loss",
    "build_loss", "get_loss", "LOSS_NAMES", "compute_doc_level_advantages", "compute_doc_level_rewards",
    "dapo_loss", "dpo_loss", "dr_grpo_loss", "grpo_loss", "kl_penalty", "reinforce_loss",
)  # fmt: skip
_METRICS = (
    "compute_all_metrics", "mrr", "average_precision", "ndcg_at_k", "precision_at_k", "recall_at_k",
    "hit_rate", "kendall_tau",
)  # fmt: skip

#: Public name -> the module that defines it.
_PUBLIC: dict[str, str] = {
    # the original tool's names (adapters accepting its keywords)
    "RerankDataset": "rerankctl.api",
    "ContrastiveSFTTrainer": "rerankctl.api",
    "RLTrainer": "rerankctl.api",
    "MTEBRerankEvaluator": "rerankctl.api",
    "sample_documents": "rerankctl.api",
    "set_proxy": "rerankctl.api",
    "evaluate_reranking_dataset": "rerankctl.api",
    # models
    "Qwen3Reranker": "rerankctl.models.reranker",
    "RewardModel": "rerankctl.models.reward",
    "VLRewardModel": "rerankctl.models.vl_reward",
    "build_tiny_qwen3": "rerankctl.models.tiny",
    "load_qwen3_tokenizer": "rerankctl.models.tokenizer",
    "merge_lora": "rerankctl.models.export",
    "to_seq_cls": "rerankctl.models.export",
    # data
    "RerankRecord": "rerankctl.data.formats",
    "PreferenceRecord": "rerankctl.data.formats",
    "VLRecord": "rerankctl.data.formats",
    "parse_rerank": "rerankctl.data.formats",
    "parse_preference": "rerankctl.data.formats",
    "StreamingRerankDataset": "rerankctl.data.streaming",
    "RerankCollator": "rerankctl.data.collator",
    "PromptTokenizer": "rerankctl.data.prompt",
    "format_input": "rerankctl.data.prompt",
    "get_yes_no_token_ids": "rerankctl.data.prompt",
    "validate_file": "rerankctl.data.validate",
    "convert_file": "rerankctl.data.converters",
    # eval and serving
    "APIReranker": "rerankctl.serve.client",
    "evaluate_local": "rerankctl.eval.local",
    "create_app": "rerankctl.serve.app",
    # configs, store, errors
    "SFTConfig": "rerankctl.config.sft",
    "RLConfig": "rerankctl.config.rl",
    "RewardConfig": "rerankctl.config.reward",
    "RunStore": "rerankctl.store.store",
    "RerankctlError": "rerankctl.errors",
    "DataError": "rerankctl.errors",
    "UsageError": "rerankctl.errors",
    **{name: "rerankctl.losses" for name in _LOSSES},
    **{name: "rerankctl.eval.metrics" for name in _METRICS},
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'rerankctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
