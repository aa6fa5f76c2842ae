"""The trainers under the seed's keywords: ``ContrastiveSFTTrainer(yes_token_id=, no_token_id=, loss_type=)``.

Thin subclasses: they rename the keywords (:mod:`rerankctl.config.aliases`), build the loss from
``loss_type`` and the loss options (validated by :class:`rerankctl.config.sft.SFTConfig`, so the
seed's spellings such as ``lambda_loss`` work) and read the yes/no ids from the tokenizer when
none are given; then the canonical constructor does the rest.
"""

from __future__ import annotations

from typing import Any

from rerankctl.config.aliases import rename_keywords
from rerankctl.train import rl as _rl
from rerankctl.train import sft as _sft

#: Keywords that configure the loss (SFTConfig field names) rather than the trainer.
LOSS_KEYWORDS = (
    "temperature",
    "infonce_mode",
    "lambda_metric",
    "lambda_weighting",
    "lambda_k",
    "lambda_sigma",
    "lambda_mu",
    "ranknet_max_pairs",
    "bce_pos_weight",
)


def _yes_no(kwargs: dict[str, Any]) -> None:
    """Fill ``yes_id``/``no_id`` from the tokenizer (``processing_class``/``tokenizer``) when absent."""
    if "yes_id" in kwargs and "no_id" in kwargs:
        return
    tokenizer = kwargs.get("processing_class") or kwargs.pop("tokenizer", None)
    if tokenizer is None:
        raise TypeError("give yes_token_id= and no_token_id= (or processing_class=tokenizer to read them)")
    from rerankctl.data.prompt import get_yes_no_token_ids

    yes, no = get_yes_no_token_ids(tokenizer)
    kwargs.setdefault("yes_id", yes)
    kwargs.setdefault("no_id", no)


def build_sft_loss(loss_type: str = "infonce", **options: Any) -> Any:
    """The loss callable for ``loss_type`` with SFTConfig's option names (aliases accepted)."""
    from rerankctl.config.sft import SFTConfig
    from rerankctl.losses import build_loss

    cfg = SFTConfig(loss_type=loss_type, **options)
    return build_loss(cfg.loss_type, **cfg.loss_options())


class ContrastiveSFTTrainer(_sft.ContrastiveSFTTrainer):
    """:class:`rerankctl.train.sft.ContrastiveSFTTrainer` taking the seed's keywords.

    ``loss_type=`` (with ``temperature=``, ``infonce_mode=``, ...) builds ``loss_fn``;
    ``yes_token_id=``/``no_token_id=`` are ``yes_id``/``no_id``.
    """

    def __init__(self, *args: Any, loss_type: str | None = None, **kwargs: Any) -> None:
        kwargs = rename_keywords("ContrastiveSFTTrainer", kwargs)
        options = {k: kwargs.pop(k) for k in LOSS_KEYWORDS if k in kwargs}
        if "loss_fn" not in kwargs:
            kwargs["loss_fn"] = build_sft_loss(loss_type or "infonce", **options)
        elif loss_type is not None or options:
            raise TypeError("give either loss_fn= or loss_type= (with its options), not both")
        _yes_no(kwargs)
        super().__init__(*args, **kwargs)


class RLTrainer(_rl.RLTrainer):
    """:class:`rerankctl.train.rl.RLTrainer` taking ``yes_token_id=``/``no_token_id=`` and the seed's
    value spellings (``reward_type='ndcg'``, ``loss_type='drgrpo'``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from rerankctl.config.aliases import canonical

        kwargs = rename_keywords("RLTrainer", kwargs)
        if "reward_type" in kwargs:
            kwargs["reward_type"] = canonical("reward_type", kwargs["reward_type"])
        if "loss_type" in kwargs:
            kwargs["loss_type"] = canonical("rl_loss_type", kwargs["loss_type"])
        _yes_no(kwargs)
        super().__init__(*args, **kwargs)
