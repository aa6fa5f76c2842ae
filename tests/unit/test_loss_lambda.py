"""LambdaLoss: every weighting scheme by hand, and |ΔAP|, |ΔRR|, |ΔNDCG| against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rerankctl.losses import (
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
    lambda_loss,
)
from rerankctl.losses.lambda_weighting import delta_average_precision, delta_reciprocal_rank, resolve_scheme


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


# scores [0.5, 2.0, 1.0] rank the docs 1, 2, 0; labels [2, 0, 1] in that order are [0, 1, 2].
S = torch.tensor([[0.5, 2.0, 1.0]], dtype=torch.float64)
Y = torch.tensor([[2.0, 0.0, 1.0]], dtype=torch.float64)
SORTED_S = [2.0, 1.0, 0.5]
SORTED_Y = [0.0, 1.0, 2.0]
MAX_DCG = 3.0 / math.log2(2) + 1.0 / math.log2(3)  # ideal grades 2, 1, 0
G = [(2**y - 1) / MAX_DCG for y in SORTED_Y]
D = [math.log2(1 + r) for r in (1, 2, 3)]
PAIRS = [(i, j) for i in range(3) for j in range(3) if SORTED_Y[i] > SORTED_Y[j]]  # (1,0), (2,0), (2,1)


def by_hand(weight, pairs=PAIRS, sigma=1.0):
    total = sum(weight(i, j) * sp(-sigma * (SORTED_S[i] - SORTED_S[j])) for i, j in pairs)
    return total / len(pairs)


def lambdarank_w(i, j):
    return abs(G[i] - G[j]) * abs(1 / D[i] - 1 / D[j])


def loss2_w(i, j):
    d = abs(i - j)
    return abs(G[i] - G[j]) * abs(1 / math.log2(1 + d) - 1 / math.log2(2 + d))


def test_no_weighting_by_hand():
    assert lambda_loss(S, Y, weighting_scheme="none").item() == pytest.approx(
        by_hand(lambda i, j: 1.0), abs=1e-12
    )
    assert lambda_loss(S, Y, weighting_scheme="none", sigma=0.5).item() == pytest.approx(
        by_hand(lambda i, j: 1.0, sigma=0.5), abs=1e-12
    )


def test_lambdarank_by_hand():
    assert lambda_loss(S, Y, weighting_scheme="lambdarank").item() == pytest.approx(
        by_hand(lambdarank_w), abs=1e-12
    )


def test_ndcgloss2_by_hand():
    assert lambda_loss(S, Y, weighting_scheme="ndcgloss2").item() == pytest.approx(
        by_hand(loss2_w), abs=1e-12
    )


def test_ndcgloss2pp_by_hand_with_mu():
    for mu in (10.0, 2.5):
        want = by_hand(lambda i, j: mu * loss2_w(i, j) + lambdarank_w(i, j))
        assert lambda_loss(S, Y, mu=mu).item() == pytest.approx(want, abs=1e-12)


def test_ndcgloss1_by_hand_uses_all_ordered_pairs():
    all_pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    want = by_hand(lambda i, j: G[i] / D[i], pairs=all_pairs)
    assert lambda_loss(S, Y, weighting_scheme="ndcgloss1").item() == pytest.approx(want, abs=1e-12)


def test_topk_rule_both_keeps_pairs_inside_the_top_k_and_truncates_max_dcg():
    # allRank's rule, k=2: only the pair of the model's ranks 1-2 (grades 0, 1); maxDCG@2 of (2, 1)
    max_dcg2 = 3.0 + 1.0 / math.log2(3)
    g = [(2**y - 1) / max_dcg2 for y in SORTED_Y]
    w = abs(g[1] - g[0]) * abs(1 / D[1] - 1 / D[0])
    want = w * sp(-(SORTED_S[1] - SORTED_S[0]))
    got = lambda_loss(S, Y, weighting_scheme="lambdarank", k=2, topk_rule="both").item()
    assert got == pytest.approx(want, abs=1e-12)


def _lambdarank_at(k):
    max_dcg = sum((2**y - 1) / math.log2(2 + r) for r, y in enumerate(sorted(SORTED_Y, reverse=True)[:k]))
    g = [(2**y - 1) / max_dcg for y in SORTED_Y]
    return lambda i, j: abs(g[i] - g[j]) * abs(1 / D[i] - 1 / D[j])


def test_topk_rule_either_is_the_default_and_keeps_pairs_with_one_document_in_the_top_k():
    # sentence-transformers v6: k=2 keeps (1,0), (2,0) and (2,1) (each has rank 1 or 2 in it);
    # k=1 keeps the pairs with the top document: (1,0) and (2,0). maxDCG is taken at k.
    for k, pairs in ((2, PAIRS), (1, [(1, 0), (2, 0)])):
        want = by_hand(_lambdarank_at(k), pairs=pairs)
        for kwargs in ({}, {"topk_rule": "either"}):
            got = lambda_loss(S, Y, weighting_scheme="lambdarank", k=k, **kwargs).item()
            assert got == pytest.approx(want, abs=1e-12), (k, kwargs)
    # the two rules differ here: "both" at k=2 keeps a single pair
    assert lambda_loss(S, Y, weighting_scheme="lambdarank", k=2).item() != pytest.approx(
        lambda_loss(S, Y, weighting_scheme="lambdarank", k=2, topk_rule="both").item()
    )


def test_k1_has_a_nonzero_gradient_and_k_below_one_or_both_at_k1_is_refused():
    # issue 18: --lambda-k 1 trained with an all-zero gradient (the "both" rule keeps no pair at k=1)
    s = S.clone().requires_grad_(True)
    lambda_loss(s, Y, k=1).backward()
    # the top document (index 1, grade 0) is pushed down, the two it outranks are pulled up
    assert s.grad[0, 1] > 0 and s.grad[0, 0] < 0 and s.grad[0, 2] < 0
    with pytest.raises(ValueError, match="keeps no pair"):
        lambda_loss(S, Y, k=1, topk_rule="both")
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            lambda_loss(S, Y, k=bad)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        lambda_loss(S, Y, sigma=0.0)
    with pytest.raises(ValueError, match="mu must be >= 0"):
        lambda_loss(S, Y, mu=-1.0)
    with pytest.raises(ValueError, match="topk_rule"):
        lambda_loss(S, Y, topk_rule="any")
    # a k above the group size is the whole list, under both rules
    assert lambda_loss(S, Y, k=10, topk_rule="both").item() == pytest.approx(lambda_loss(S, Y).item())


class _LookupModel(torch.nn.Module):
    """Stands in for a CrossEncoder: the 'document' text is the index of a fixed score."""

    num_labels = 1

    def __init__(self, scores):
        super().__init__()
        self.scores = scores
        self.device = torch.device("cpu")

    def preprocess(self, pairs, prompt=None, task=None):
        return {"idx": torch.tensor([int(doc) for _, doc in pairs])}

    def forward(self, tokens):
        return {"scores": self.scores[tokens["idx"]]}


@pytest.mark.parametrize("rule_k", [None, 1, 2, 4])
def test_equals_sentence_transformers_lambda_loss(rule_k):
    """Same value as sentence-transformers v6 ``LambdaLoss`` (natural log) for every scheme and k."""
    st = pytest.importorskip("sentence_transformers.cross_encoder.losses.lambda_loss")
    gen = torch.Generator().manual_seed(3)
    ours_of = {"none": st.NoWeightingScheme, "ndcgloss1": st.NDCGLoss1Scheme, "ndcgloss2": st.NDCGLoss2Scheme}
    ours_of |= {"lambdarank": st.LambdaRankScheme, "ndcgloss2pp": lambda: st.NDCGLoss2PPScheme(mu=10.0)}
    for trial in range(4):
        n = 7
        scores = torch.randn(n, generator=gen)  # distinct: both sort the same way
        labels = torch.randint(0, 4, (n,), generator=gen).float()
        labels[trial % n] = 3.0  # at least one relevant document
        model = _LookupModel(scores)
        inputs = (["q"], [[str(i) for i in range(n)]])
        for name, scheme in ours_of.items():
            ref = st.LambdaLoss(
                model, weighting_scheme=scheme(), k=rule_k, sigma=1.3, reduction_log="natural"
            )
            want = ref(inputs, [labels]).item()
            got = lambda_loss(
                scores[None].double(), labels[None].double(), weighting_scheme=name, k=rule_k, sigma=1.3
            )
            if name == "ndcgloss1":
                want = _without_diagonal(want, scores, labels, rule_k)
            assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-7), (name, rule_k, trial)


def _without_diagonal(st_value, scores, labels, k):
    """sentence-transformers' (and allRank's) NDCGLoss1 also averages the n diagonal terms (i, i),
    each the constant ln 2 · G_i / D_i; ours averages over i != j only (module docstring)."""
    n = scores.numel()
    kk = n if k is None else min(k, n)
    y = labels[scores.argsort(descending=True)].double()
    ideal = labels.sort(descending=True).values.double()
    disc = torch.log2(torch.arange(2, n + 2, dtype=torch.float64))
    gain = (2**y - 1) / ((2**ideal - 1) / disc)[:kk].sum()
    count = n * n - (n - kk) ** 2  # cells with a row or column inside the top k, diagonal included
    diagonal = (math.log(2) * gain / disc)[:kk].sum().item()
    return (st_value * count - diagonal) / (count - kk)


def test_config_refuses_lambda_options_that_would_do_something_else():
    from pydantic import ValidationError

    from rerankctl.config.sft import SFTConfig

    assert SFTConfig(lambda_k=1).loss_options()["topk_rule"] == "either"
    assert SFTConfig(lambda_topk_rule="both").loss_options()["topk_rule"] == "both"
    assert SFTConfig(lambda_metric="map").lambda_metric == "map"  # default weighting becomes |ΔAP|
    assert SFTConfig(lambda_metric="map", lambda_weighting="lambdarank").lambda_weighting == "lambdarank"
    bad = [
        ({"lambda_k": 1, "lambda_topk_rule": "both"}, "lambda_topk_rule", "keeps no pair"),
        ({"lambda_k": 0}, "lambda_k", "greater than or equal to 1"),
        ({"lambda_sigma": 0.0}, "lambda_sigma", "greater than 0"),
        ({"temperature": 0.0}, "temperature", "greater than 0"),
        ({"lambda_topk_rule": "any"}, "lambda_topk_rule", "either"),
        ({"lambda_metric": "map", "lambda_weighting": "ndcgloss2pp"}, "lambda_weighting", "bound on NDCG"),
        ({"lambda_metric": "mrr", "lambda_weighting": "none"}, "lambda_weighting", "no effect"),
    ]
    for kwargs, field, text in bad:
        with pytest.raises(ValidationError) as info:
            SFTConfig(**kwargs)
        err = info.value.errors()[0]
        assert err["loc"] == (field,) and text in str(info.value), kwargs


def test_cli_refuses_lambda_combinations_with_exit_2(capsys):
    from rerankctl.cli.main import main

    argv = ["train", "sft", "--preset", "tiny", "--loss-type", "lambdaloss", "--lambda-metric", "map"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--lambda-weighting", "ndcgloss2"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "lambda_weighting" in err and "bound on NDCG" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "sft", "--preset", "tiny", "--lambda-k", "1", "--lambda-topk-rule", "both"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "lambda_topk_rule" in err and "keeps no pair" in err


def test_map_and_mrr_metrics_use_exact_swap_deltas():
    # binary relevance of the model's order [0, 1, 1]: AP = (1/2 + 2/3) / 2
    ap, rr = _ap, _rr
    rel = [0, 1, 1]

    def swapped(metric, i, j):
        r2 = list(rel)
        r2[i], r2[j] = r2[j], r2[i]
        return abs(metric(r2) - metric(rel))

    for name, metric in (("map", ap), ("mrr", rr)):
        want = by_hand(lambda i, j, metric=metric: swapped(metric, i, j))
        for scheme in ("lambdarank", "ndcgloss2pp", "ndcgloss2", "ndcgloss1"):
            got = lambda_loss(S, Y, metric=name, weighting_scheme=scheme).item()
            assert got == pytest.approx(want, abs=1e-12), (name, scheme)


def _ap(rel):
    total = sum(rel)
    return sum(sum(rel[: i + 1]) / (i + 1) for i in range(len(rel)) if rel[i]) / total if total else 0.0


def _rr(rel):
    return next((1 / (i + 1) for i, r in enumerate(rel) if r), 0.0)


def _dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


@pytest.mark.parametrize("seed", range(6))
def test_swap_deltas_match_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    rel = torch.rand(4, 7, generator=g) < 0.4
    got_ap, got_rr = delta_average_precision(rel), delta_reciprocal_rank(rel)
    for b in range(4):
        base = [int(v) for v in rel[b]]
        for i, j in itertools.product(range(7), repeat=2):
            r2 = list(base)
            r2[i], r2[j] = r2[j], r2[i]
            assert got_ap[b, i, j].item() == pytest.approx(abs(_ap(r2) - _ap(base)), abs=1e-12)
            assert got_rr[b, i, j].item() == pytest.approx(abs(_rr(r2) - _rr(base)), abs=1e-12)


def test_lambdarank_ndcg_weights_are_swap_deltas_of_ndcg():
    grades = [3.0, 0.0, 1.0, 2.0, 0.0, 1.0]
    ideal = _dcg(sorted((2**x - 1 for x in grades), reverse=True))
    gain = torch.tensor([[(2**x - 1) / ideal for x in grades]], dtype=torch.float64)
    disc = torch.log2(1 + torch.arange(1, 7, dtype=torch.float64))[None, :]
    w = LambdaRankScheme("ndcg")(gain, disc, torch.tensor([grades]))
    base = _dcg([2**x - 1 for x in grades]) / ideal
    for i, j in itertools.product(range(6), repeat=2):
        r2 = list(grades)
        r2[i], r2[j] = r2[j], r2[i]
        assert w[0, i, j].item() == pytest.approx(abs(_dcg([2**x - 1 for x in r2]) / ideal - base), abs=1e-12)


def test_resolve_scheme_names_and_objects():
    assert isinstance(resolve_scheme("none", "ndcg", 10), NoWeightingScheme)
    assert isinstance(resolve_scheme("ndcgloss1", "ndcg", 10), NDCGLoss1Scheme)
    assert isinstance(resolve_scheme("ndcgloss2", "ndcg", 10), NDCGLoss2Scheme)
    pp = resolve_scheme("ndcgloss2pp", "ndcg", 3.0)
    assert isinstance(pp, NDCGLoss2PPScheme) and pp.mu == 3.0
    assert resolve_scheme("ndcgloss2pp", "map", 10).metric == "map"
    custom = NDCGLoss2Scheme()
    assert resolve_scheme(custom, "ndcg", 10) is custom
    assert lambda_loss(S, Y, weighting_scheme=custom).item() == pytest.approx(by_hand(loss2_w), abs=1e-12)
    with pytest.raises(ValueError, match="weighting_scheme"):
        lambda_loss(S, Y, weighting_scheme="bogus")
    with pytest.raises(ValueError, match="metric"):
        lambda_loss(S, Y, metric="p@5")


def test_tied_scores_rank_by_index_deterministically():
    s = torch.zeros(1, 4, dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 0.0, 2.0]], dtype=torch.float64)
    a = lambda_loss(s, y).item()
    assert all(lambda_loss(s, y).item() == a for _ in range(3))
    # with every score tied, ranks follow index: grades in model order are [0, 1, 0, 2]
    max_dcg = 3.0 + 1.0 / math.log2(3)
    g = [(2**x - 1) / max_dcg for x in (0.0, 1.0, 0.0, 2.0)]
    d = [math.log2(1 + r) for r in (1, 2, 3, 4)]
    pairs = [(1, 0), (1, 2), (3, 0), (3, 1), (3, 2)]

    def w(i, j):
        dist = abs(i - j)
        l2 = abs(g[i] - g[j]) * abs(1 / math.log2(1 + dist) - 1 / math.log2(2 + dist))
        return 10.0 * l2 + abs(g[i] - g[j]) * abs(1 / d[i] - 1 / d[j])

    assert a == pytest.approx(sum(w(i, j) * math.log(2) for i, j in pairs) / len(pairs), abs=1e-12)
