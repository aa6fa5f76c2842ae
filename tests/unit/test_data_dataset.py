"""RerankDataset: loading through `datasets`, normalisation, errors, sampling, over-length filtering."""

from __future__ import annotations

import json

import pytest

from rerankctl.data.rerank_dataset import RerankDataset
from rerankctl.errors import DataError, NotFoundError

RECORDS = [
    {
        "query": f"q{i}",
        "pos": [f"p{i}a", f"p{i}b"],
        "neg": [f"n{i}_{j}" for j in range(6)],
        "pos_scores": [0.9, 0.8],
        "neg_scores": [0.1 * j for j in range(6)],
    }
    for i in range(12)
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_loads_jsonl_and_samples_groups(tmp_path):
    ds = RerankDataset(_jsonl(tmp_path / "d.jsonl", RECORDS), n_docs=4, n_pos=1, strategy="hard", seed=0)
    assert len(ds) == 12
    item = ds[3]
    assert set(item) == {"query", "docs", "labels", "instruction", "teacher_scores"}
    assert item["query"] == "q3" and item["instruction"] is None
    assert item["labels"] == [1.0, 0.0, 0.0, 0.0]
    assert item["docs"][0] in ("p3a", "p3b")
    assert item["docs"][1:] == ["n3_5", "n3_4", "n3_3"]  # hard: highest teacher scores
    assert item["teacher_scores"][1:] == pytest.approx([0.5, 0.4, 0.3])
    full = ds.record(3)
    assert full.docs == ["p3a", "p3b"] + [f"n3_{j}" for j in range(6)]
    assert ds[3] == item  # same epoch, same group


def test_set_epoch_resamples_deterministically(tmp_path):
    ds = RerankDataset(RECORDS, n_docs=3, n_pos=1, strategy="random", seed=5)
    epoch0 = [ds[i]["docs"] for i in range(len(ds))]
    ds.set_epoch(1)
    epoch1 = [ds[i]["docs"] for i in range(len(ds))]
    assert epoch0 != epoch1
    again = RerankDataset(RECORDS, n_docs=3, n_pos=1, strategy="random", seed=5)
    again.set_epoch(1)
    assert [again[i]["docs"] for i in range(len(again))] == epoch1


def test_parquet_csv_and_graded_records(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    graded = [{"query": "g", "docs": ["a", "b", "c"], "labels": [0, 2, 1]}]
    pq.write_table(pa.Table.from_pylist(graded), tmp_path / "g.parquet")
    ds = RerankDataset(tmp_path / "g.parquet", n_docs=0, n_pos=0)
    assert ds[0]["docs"] == ["b", "c", "a"] and ds[0]["labels"] == [2.0, 1.0, 0.0]
    (tmp_path / "d.csv").write_text('query,pos,neg\nq,"[""p""]","[""n1"", ""n2""]"\n', encoding="utf-8")
    ds = RerankDataset(tmp_path / "d.csv", n_docs=0, n_pos=0)
    assert ds.record(0).docs == ["p", "n1", "n2"]


def test_bad_record_names_file_line_and_field(tmp_path):
    rows = RECORDS[:3] + [{"query": "x", "pos": ["p"], "neg": ["ok", ""]}] + RECORDS[3:5]
    path = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as info:
        RerankDataset(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), 4, "neg[1]")
    ds = RerankDataset(path, skip_invalid=True)
    assert len(ds) == 5 and ds.skipped == 1


def test_malformed_json_line_is_found_and_skippable(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n{not json\n" + json.dumps(RECORDS[1]) + "\n")
    with pytest.raises(DataError) as info:
        RerankDataset(path)
    assert info.value.line == 2 and "not valid JSON" in info.value.message
    ds = RerankDataset(path, skip_invalid=True)
    assert len(ds) == 2 and ds.skipped == 1


def test_record_list_errors_use_the_index(tmp_path):
    with pytest.raises(DataError) as info:
        RerankDataset([RECORDS[0], {"query": "q", "pos": []}])
    assert info.value.line == 2 and info.value.field == "pos"


def test_missing_source_and_empty_data(tmp_path):
    with pytest.raises(NotFoundError):
        RerankDataset(tmp_path / "nope.jsonl")
    with pytest.raises(NotFoundError):
        RerankDataset("no-such-org/no-such-dataset-offline")
    with pytest.raises(DataError, match="no valid records"):
        RerankDataset([{"query": "q", "pos": []}], skip_invalid=True)


def test_filter_overlength_drops_docs_and_emptied_groups(qwen3_tokenizer):
    long = "token " * 300
    records = [
        {"query": "a", "pos": ["short pos"], "neg": [long, "short neg"]},
        {"query": "b", "pos": [long], "neg": ["short neg"]},
    ]
    ds = RerankDataset(records, n_docs=0, n_pos=0)
    dropped = ds.filter_overlength(qwen3_tokenizer, max_length=128)
    assert dropped == 2 and ds.dropped_docs == 2 and ds.dropped_groups == 1
    assert len(ds) == 1 and ds.record(0).docs == ["short pos", "short neg"]


def test_lengths_proxy(tmp_path):
    ds = RerankDataset([{"query": "abc", "pos": ["12345"], "neg": ["1"]}])
    assert ds.lengths() == [8]


def test_rows_with_mixed_but_valid_types_still_load(tmp_path):
    rows = [
        {"query": "a", "pos": "lone string", "neg": ["x"]},
        {"query": "b", "pos": ["p1", "p2"], "neg": "y"},
    ]
    ds = RerankDataset(_jsonl(tmp_path / "d.jsonl", rows), n_docs=0, n_pos=0)
    assert [ds.record(i).docs for i in range(2)] == [["lone string", "x"], ["p1", "p2", "y"]]


def test_token_lengths_are_the_longest_prompt_per_record(qwen3_tokenizer):
    from rerankctl.data.prompt import format_full

    records = [{"query": "q", "pos": ["short"], "neg": ["a much longer negative document " * 20]}, RECORDS[0]]
    ds = RerankDataset(records, n_docs=0, n_pos=0)
    expected = [
        max(len(qwen3_tokenizer.encode(format_full(r.query, d), add_special_tokens=False)) for d in r.docs)
        for r in (ds.record(0), ds.record(1))
    ]
    assert expected[0] > 120 > expected[1]
    assert ds.token_lengths(qwen3_tokenizer, max_length=512) == expected
    assert ds.token_lengths(qwen3_tokenizer, max_length=120) == [120, expected[1]]
