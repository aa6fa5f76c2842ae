"""StreamingRerankDataset: no duplicates and no losses across workers and ranks; line-accurate errors."""

from __future__ import annotations

import gzip
import json

import pytest
from torch.utils.data import DataLoader

from rerankctl.data.streaming import StreamingRerankDataset
from rerankctl.errors import DataError, UsageError

N = 103  # not a multiple of any shard count used below


def _write(path, n=N, blank_every=0):
    lines = []
    for i in range(n):
        lines.append(json.dumps({"query": f"q{i}", "pos": [f"p{i}"], "neg": [f"n{i}_{j}" for j in range(5)]}))
        if blank_every and i % blank_every == 0:
            lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def _queries(loader_or_ds):
    out = []
    for item in loader_or_ds:
        if isinstance(item["query"], list):  # a DataLoader batch of groups
            out.extend(item["query"])
        else:
            out.append(item["query"])
    return out


def _loader(ds, workers):
    return DataLoader(
        ds, batch_size=4, num_workers=workers, collate_fn=lambda b: {"query": [g["query"] for g in b]}
    )


def test_single_reader_reads_everything_in_order(tmp_path):
    ds = StreamingRerankDataset(
        _write(tmp_path / "d.jsonl", blank_every=10), n_docs=3, n_pos=1, rank=0, world_size=1
    )
    items = list(ds)
    assert [g["query"] for g in items] == [f"q{i}" for i in range(N)]
    assert all(len(g["docs"]) == 3 and g["labels"] == [1.0, 0.0, 0.0] for g in items)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [2, 3])
def test_dataloader_workers_split_without_duplicates_or_losses(tmp_path, workers):
    ds = StreamingRerankDataset(_write(tmp_path / "d.jsonl"), n_docs=2, rank=0, world_size=1)
    got = _queries(_loader(ds, workers))
    assert len(got) == N and sorted(got) == sorted(f"q{i}" for i in range(N))


def test_distributed_ranks_times_workers_cover_the_file_once(tmp_path):
    path = _write(tmp_path / "d.jsonl", blank_every=7)
    seen = []
    for rank in range(3):
        ds = StreamingRerankDataset(path, n_docs=2, rank=rank, world_size=3)
        part = _queries(_loader(ds, 2))
        assert abs(len(part) - N / 3) <= 2  # balanced
        seen.extend(part)
    assert len(seen) == N and len(set(seen)) == N


def test_rank_from_environment(tmp_path, monkeypatch):
    path = _write(tmp_path / "d.jsonl", n=10)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert _queries(StreamingRerankDataset(path)) == ["q1", "q3", "q5", "q7", "q9"]


def test_groups_do_not_depend_on_sharding_and_change_by_epoch(tmp_path):
    path = _write(tmp_path / "d.jsonl", n=20)
    whole = {
        g["query"]: g["docs"]
        for g in StreamingRerankDataset(path, n_docs=3, strategy="random", rank=0, world_size=1)
    }
    halves = {}
    for rank in range(2):
        for g in StreamingRerankDataset(path, n_docs=3, strategy="random", rank=rank, world_size=2):
            halves[g["query"]] = g["docs"]
    assert halves == whole
    ds = StreamingRerankDataset(path, n_docs=3, strategy="random", rank=0, world_size=1)
    ds.set_epoch(1)
    assert {g["query"]: g["docs"] for g in ds} != whole


def test_shuffle_buffer_is_a_permutation(tmp_path):
    ds = StreamingRerankDataset(_write(tmp_path / "d.jsonl"), shuffle_buffer=16, rank=0, world_size=1)
    got = _queries(ds)
    assert sorted(got) == sorted(f"q{i}" for i in range(N)) and got != [f"q{i}" for i in range(N)]
    assert _queries(ds) == got  # deterministic for a given epoch


def test_bad_line_raises_with_line_or_is_skipped(tmp_path):
    path = _write(tmp_path / "d.jsonl", n=5)
    with open(path, "a") as handle:
        handle.write('{"query": "x", "pos": [1]}\nnot json\n')
    with pytest.raises(DataError) as info:
        list(StreamingRerankDataset(path, rank=0, world_size=1))
    assert (info.value.line, info.value.field) == (6, "pos[0]")
    ds = StreamingRerankDataset(path, skip_invalid=True, rank=0, world_size=1)
    assert len(list(ds)) == 5 and ds.skipped == 2


def test_gzip_and_non_jsonl(tmp_path):
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(json.dumps({"query": "q", "pos": ["p"]}) + "\n")
    assert _queries(StreamingRerankDataset(gz, rank=0, world_size=1)) == ["q"]
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(UsageError, match="JSONL only"):
        StreamingRerankDataset(tmp_path / "d.parquet")
