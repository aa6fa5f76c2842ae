"""File statistics, splitting and sampling on small hand-made files (hand-computed values)."""

from __future__ import annotations

import json

import pytest

from rerankctl.data.split import sample_file, split_file
from rerankctl.data.stats import file_stats, percentile
from rerankctl.errors import DataError, UsageError


def _write(path, rows):
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def test_percentile_matches_linear_interpolation():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10], 99) == 10
    assert percentile([0, 10], 90) == 9.0


def test_rerank_stats_worked_example(tmp_path):
    rows = [
        {"query": "a", "pos": ["p1"], "neg": ["n1", "n2", "n1"]},  # 4 docs, 1 duplicate doc
        {"query": "a", "pos": ["p1"], "neg": ["n1", "n2", "n1"]},  # duplicate record
        {"query": "b", "docs": ["x", "y"], "labels": [2, 1], "scores": [0.5, 0.1]},
        "broken",
    ]
    stats = file_stats(_write(tmp_path / "d.jsonl", rows))
    assert stats["records"] == 3 and stats["invalid"] == 1
    assert stats["distinct_queries"] == 2 and stats["duplicate_records"] == 1
    assert stats["docs"] == 10 and stats["positive_ratio"] == pytest.approx(4 / 10)
    assert stats["duplicate_docs_in_record"] == 2 and stats["with_teacher_scores"] == 1
    assert stats["docs_per_query"]["mean"] == pytest.approx(10 / 3)
    assert stats["pos_per_query"]["max"] == 2


def test_rerank_stats_token_lengths(tmp_path, qwen3_tokenizer):
    from rerankctl.data.prompt import format_full

    rows = [{"query": "q", "pos": ["short"], "neg": ["long " * 100]}]
    stats = file_stats(_write(tmp_path / "d.jsonl", rows), tokenizer=qwen3_tokenizer, max_length=120)
    lengths = sorted(
        len(qwen3_tokenizer.encode(format_full("q", d), add_special_tokens=False))
        for d in rows[0]["pos"] + rows[0]["neg"]
    )
    assert stats["prompt_tokens"]["min"] == lengths[0] and stats["prompt_tokens"]["max"] == lengths[1]
    assert stats["overlength_pairs"] == 1


def test_preference_and_vl_stats(tmp_path):
    pref = [
        {"prompt": "p", "chosen": "longer answer", "rejected": "no", "margin": 1},
        {"prompt": "p", "chosen": "a", "rejected": "bb"},
    ]
    stats = file_stats(_write(tmp_path / "p.jsonl", pref))
    assert stats["kind"] == "preference" and stats["distinct_queries"] == 1
    assert stats["with_margin"] == 1 and stats["chosen_longer_ratio"] == 0.5
    (tmp_path / "i.png").write_bytes(b"x")
    vl = [
        {"id": i, "query": "q", "image": "i.png", "response": ["a", "b"], "human_ranking": r}
        for i, r in enumerate([[0, 1], [1, 0], [1, 0]])
    ]
    stats = file_stats(_write(tmp_path / "v.jsonl", vl))
    assert (stats["first_response_preferred"], stats["second_response_preferred"]) == (1, 2)


def test_split_keeps_each_query_on_one_side(tmp_path):
    rows = [{"query": f"q{i % 7}", "pos": [f"p{i}"], "neg": []} for i in range(30)]
    path = _write(tmp_path / "d.jsonl", rows)
    report = split_file(path, tmp_path / "tr.jsonl", tmp_path / "te.jsonl", test_frac=0.3, seed=1)
    train = [json.loads(x)["query"] for x in (tmp_path / "tr.jsonl").read_text().splitlines()]
    test = [json.loads(x)["query"] for x in (tmp_path / "te.jsonl").read_text().splitlines()]
    assert report.keys == 7 and report.test_keys == 2  # round(0.3 * 7)
    assert len(set(test)) == 2 and not set(train) & set(test) and len(train) + len(test) == 30
    again = split_file(path, tmp_path / "tr2.jsonl", tmp_path / "te2.jsonl", test_frac=0.3, seed=1)
    assert again == report and (tmp_path / "te2.jsonl").read_text() == (tmp_path / "te.jsonl").read_text()
    with pytest.raises(UsageError):
        split_file(path, tmp_path / "a", tmp_path / "b", test_frac=1.5)
    bad = _write(tmp_path / "bad.jsonl", rows[:2] + ["nope"])
    with pytest.raises(DataError) as info:
        split_file(bad, tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    assert info.value.line == 3 and not (tmp_path / "a.jsonl").exists()


def test_sample_is_uniform_ish_and_in_file_order(tmp_path):
    rows = [{"query": f"q{i}", "pos": ["p"]} for i in range(50)]
    path = _write(tmp_path / "d.jsonl", rows)
    counts = [0] * 50
    for seed in range(100):
        assert sample_file(path, 5, tmp_path / "s.jsonl", seed=seed) == 5
        picked = [int(json.loads(x)["query"][1:]) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
        assert picked == sorted(picked)
        for i in picked:
            counts[i] += 1
    assert sum(counts) == 500 and min(counts) > 0 and max(counts) < 25  # expected 10 each
    assert sample_file(path, 500, tmp_path / "all.jsonl") == 50
