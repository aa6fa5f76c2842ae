"""The paired bootstrap comparison `eval --baseline` reports (rerankctl.eval.paired)."""

from __future__ import annotations

import random

import pytest

from rerankctl.eval.paired import paired_comparison


def test_a_constant_gain_has_a_zero_width_interval():
    r = paired_comparison([0.2, 0.4, 0.6], [0.3, 0.5, 0.7])
    assert r["delta"] == pytest.approx(0.1)
    assert r["ci95"] == pytest.approx([0.1, 0.1])
    assert (r["better"], r["worse"], r["tied"]) == (3, 0, 0)


def test_pure_noise_gives_an_interval_around_zero_and_a_real_gain_one_above_it():
    rng = random.Random(0)
    base = [rng.random() for _ in range(400)]
    noise = [b + rng.gauss(0, 0.2) for b in base]
    r = paired_comparison(base, noise)
    assert r["ci95"][0] < 0 < r["ci95"][1]
    # half-width ~ 1.96 * 0.2 / sqrt(400) = 0.0196
    assert r["ci95"][1] - r["ci95"][0] == pytest.approx(2 * 0.0196, rel=0.15)
    better = [b + 0.05 + rng.gauss(0, 0.2) for b in base]
    assert paired_comparison(base, better)["ci95"][0] > 0


def test_it_is_deterministic_and_refuses_unpaired_lists():
    a, b = [0.0, 1.0, 0.5, 0.25], [1.0, 1.0, 0.0, 0.5]
    assert paired_comparison(a, b) == paired_comparison(a, b)
    with pytest.raises(ValueError, match="same"):
        paired_comparison([0.1], [0.1, 0.2])


def test_drawing_the_resamples_in_chunks_keeps_the_interval(monkeypatch):
    import rerankctl.eval.paired as paired

    rng = random.Random(1)
    base = [rng.random() for _ in range(300)]
    system = [b + 0.03 + rng.gauss(0, 0.2) for b in base]
    whole = paired_comparison(base, system)
    monkeypatch.setattr(paired, "_DRAWS_PER_CHUNK", 7 * 300 + 5)  # 7 resamples a chunk, last one short
    chunked = paired.paired_comparison(base, system)
    assert chunked["delta"] == whole["delta"]
    # different draws, same distribution: bounds within the seed-to-seed spread (~0.005 at n=300)
    assert chunked["ci95"] == pytest.approx(whole["ci95"], abs=0.01)
    assert chunked["ci95"][0] < whole["delta"] < chunked["ci95"][1]
