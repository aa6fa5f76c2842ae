"""Registry of the ranking losses by their command-line names.

``LOSSES`` maps every CLI name *and alias* to a :class:`LossSpec`; ``LOSS_NAMES`` lists the
canonical names in the order ``--help`` shows them. :func:`build_loss` turns a name and the
trainer's option dict into one uniform callable::

    loss_fn = build_loss("infonce", temperature=0.05, mode="positive_set", sigma=1.0)
    loss = loss_fn(scores, labels, mask)              # teacher_scores=... for distillation

Options the chosen loss does not accept (``sigma`` above) are dropped, so a trainer can pass
its whole loss config. Unknown names raise :class:`rerankctl.errors.UsageError` listing the
valid choices.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from rerankctl.losses.bce import bce_loss
from rerankctl.losses.ce import ce_loss
from rerankctl.losses.infonce import infonce_loss
from rerankctl.losses.kl_distill import kl_distill_loss
from rerankctl.losses.lambda_loss import lambda_loss
from rerankctl.losses.list_mle import list_mle
from rerankctl.losses.list_net import list_net
from rerankctl.losses.margin_mse import margin_mse_loss
from rerankctl.losses.p_list_mle import p_list_mle
from rerankctl.losses.ranknet import ranknet_loss

LossFn = Callable[..., Tensor]


@dataclass(frozen=True)
class LossSpec:
    """One registered loss.

    Attributes:
        name: canonical CLI name.
        fn: the loss function ``fn(scores, labels, mask, [teacher_scores], **options)``.
        aliases: other accepted names.
        needs_teacher: True for distillation losses that need ``teacher_scores``.
        description: one line for ``--help`` and docs.
    """

    name: str
    fn: LossFn
    aliases: tuple[str, ...] = ()
    needs_teacher: bool = False
    description: str = ""
    options: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        params = inspect.signature(self.fn).parameters
        skip = {"scores", "labels", "mask", "teacher_scores"}
        object.__setattr__(self, "options", tuple(p for p in params if p not in skip))


_SPECS = (
    LossSpec("lambdaloss", lambda_loss, ("lambda",), False, "LambdaLoss (NDCG/MAP/MRR-weighted pairwise)"),
    LossSpec("listmle", list_mle, (), False, "ListMLE (Plackett-Luce likelihood of the ideal order)"),
    LossSpec("plistmle", p_list_mle, ("p_listmle",), False, "Position-aware ListMLE"),
    LossSpec("listnet", list_net, (), False, "ListNet (top-one probability cross-entropy)"),
    LossSpec("infonce", infonce_loss, (), False, "InfoNCE (single / positive-set / per-positive)"),
    LossSpec("ranknet", ranknet_loss, (), False, "RankNet (pairwise logistic, optional pair sampling)"),
    LossSpec("bce", bce_loss, ("pointwise",), False, "Pointwise binary cross-entropy on logits"),
    LossSpec("ce", ce_loss, (), False, "Group softmax cross-entropy"),
    LossSpec("margin_mse", margin_mse_loss, (), True, "Margin-MSE distillation from teacher scores"),
    LossSpec("kl", kl_distill_loss, ("kl_distill",), True, "Soft-label KL distillation from teacher scores"),
)

#: Canonical names, in display order.
LOSS_NAMES: tuple[str, ...] = tuple(spec.name for spec in _SPECS)

#: Every accepted name (canonical and aliases) -> spec.
LOSSES: dict[str, LossSpec] = {name: spec for spec in _SPECS for name in (spec.name, *spec.aliases)}


def get_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` for a CLI name or alias (case-insensitive, ``-`` = ``_``)."""
    key = name.strip().lower().replace("-", "_")
    spec = LOSSES.get(key)
    if spec is None:
        from rerankctl.errors import UsageError

        choices = ", ".join(sorted(LOSSES))
        raise UsageError(f"unknown loss '{name}'", hint=f"choose one of: {choices}")
    return spec


def get_loss(name: str) -> LossFn:
    """The loss function registered under ``name`` (raises UsageError if unknown)."""
    return get_spec(name).fn


def build_loss(name: str, **options: object) -> Callable[..., Tensor]:
    """A callable ``(scores, labels, mask=None, teacher_scores=None) -> Tensor`` for ``name``.

    Only the options the loss accepts are kept. For a distillation loss a missing
    ``teacher_scores`` raises :class:`rerankctl.errors.UsageError` at call time.
    """
    spec = get_spec(name)
    kept = {k: v for k, v in options.items() if k in spec.options}

    def loss_fn(
        scores: Tensor, labels: Tensor, mask: Tensor | None = None, teacher_scores: Tensor | None = None
    ):
        if spec.needs_teacher:
            if teacher_scores is None:
                from rerankctl.errors import UsageError

                raise UsageError(
                    f"loss '{spec.name}' needs teacher scores",
                    hint="add pos_scores/neg_scores to the training data, or pick a loss without a teacher",
                )
            return spec.fn(scores, labels, mask, teacher_scores, **kept)
        return spec.fn(scores, labels, mask, **kept)

    loss_fn.__name__ = f"{spec.name}_loss"
    loss_fn.spec = spec  # type: ignore[attr-defined]
    loss_fn.options = dict(kept)  # type: ignore[attr-defined]
    return loss_fn
