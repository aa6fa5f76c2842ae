"""Reward metrics on hand-computed examples, and the JSON / Markdown / PNG reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rerankctl.train.reward_eval import markdown_report, reward_metrics, write_reports


def test_metrics_worked_example():
    chosen, rejected = [3.0, 1.0, 2.0, 4.0], [1.0, 2.0, 2.0, 0.0]
    m = reward_metrics(chosen, rejected)
    # diffs 2, -1, 0, 4: wins 1 + 0 + 0.5 + 1 = 2.5 of 4; signs 1 - 1 + 0 + 1 = 1 of 4.
    assert m["accuracy"] == 0.625
    assert m["kendall_tau"] == 0.25
    assert m["margin_mean"] == 1.25
    assert m["margin_std"] == pytest.approx(math.sqrt(((0.75**2) + (2.25**2) + (1.25**2) + (2.75**2)) / 4))
    assert (m["chosen_mean"], m["chosen_min"], m["chosen_max"]) == (2.5, 1.0, 4.0)
    assert m["chosen_std"] == pytest.approx(math.sqrt(1.25))
    assert (m["rejected_mean"], m["rejected_min"], m["rejected_max"]) == (1.25, 0.0, 2.0)
    assert m["pairs"] == 4.0


def test_length_correlation_detects_length_bias():
    chosen, rejected = [5.0, 7.0], [1.0, 3.0]
    lengths = [[50, 10], [70, 30]]  # reward = length / 10 exactly
    assert reward_metrics(chosen, rejected, lengths=lengths)["length_correlation"] == pytest.approx(1.0)
    anti = [[10, 50], [30, 70]]
    corr = reward_metrics(chosen, rejected, lengths=anti)["length_correlation"]
    # rewards (5,7,1,3) vs lengths (10,30,50,70): hand-computed Pearson r = -0.6
    assert corr == pytest.approx(-0.6)


def test_margin_kendall_tau_b_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    chosen, rejected = rng.normal(size=12), rng.normal(size=12)
    margins = rng.integers(0, 3, size=12).astype(float)  # ties on purpose
    got = reward_metrics(chosen, rejected, margins=margins)["margin_kendall_tau"]
    assert got == pytest.approx(stats.kendalltau(chosen - rejected, margins).statistic)
    assert "margin_kendall_tau" not in reward_metrics(chosen, rejected, margins=np.zeros(12))


def test_metrics_reject_mismatched_inputs():
    with pytest.raises(ValueError):
        reward_metrics([1.0, 2.0], [1.0])


def test_reports_are_written(tmp_path):
    m = reward_metrics([1.0, 2.0], [0.0, 3.0], lengths=[[1, 1], [1, 1]])
    assert math.isnan(m["length_correlation"])  # constant lengths
    scores = {"chosen": np.array([1.0, 2.0]), "rejected": np.array([0.0, 3.0])}
    paths = write_reports(tmp_path, m, scores, extra={"model": "x"})
    data = json.loads(paths["json"].read_text())
    assert data["metrics"]["accuracy"] == 0.5 and data["metrics"]["length_correlation"] is None
    assert data["model"] == "x"
    assert "| accuracy | 0.5000 |" in paths["markdown"].read_text()
    pytest.importorskip("matplotlib")
    assert paths["histogram"].read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_markdown_formats_integers_plainly():
    assert "| pairs | 3 |" in markdown_report({"pairs": 3.0})
