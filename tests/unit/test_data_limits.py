"""The per-field character cap (`--max-chars`): applied while reading, counted, the same on every path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerankctl.data.formats import PreferenceRecord, RerankRecord, VLRecord
from rerankctl.data.limits import DEFAULT_MAX_CHARS, cap_record, cut


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


LONG = {"query": "q" * 50, "pos": ["p" * 30], "neg": ["n" * 5, "m" * 12]}
SHORT = {"query": "short", "pos": ["a"], "neg": ["b"]}


def test_cut_and_cap_record_by_hand():
    assert cut("abcdef", 4) == ("abcd", True)
    assert cut("abc", 4) == ("abc", False)
    assert cut("abcdef", 0) == ("abcdef", False)  # 0 = no cap
    record = RerankRecord("q" * 50, ["p" * 30, "n" * 5], [1.0, 0.0], instruction="i" * 11)
    assert cap_record(record, 10) is True
    assert (record.query, record.docs, record.instruction) == ("q" * 10, ["p" * 10, "n" * 5], "i" * 10)
    assert cap_record(record, 10) is False  # already within the cap
    pref = PreferenceRecord(
        [{"role": "user", "content": "u" * 20}], [{"role": "assistant", "content": "c"}], []
    )
    assert cap_record(pref, 8) is True and pref.prompt[0]["content"] == "u" * 8
    vl = VLRecord("id", "v" * 9, "img.png", ["r" * 3, "s" * 9], [0, 1])
    assert cap_record(vl, 4) is True and (vl.query, vl.responses) == ("vvvv", ["rrr", "ssss"])


def test_rerank_dataset_cuts_while_reading_and_counts_the_records(tmp_path):
    from rerankctl.data.rerank_dataset import RerankDataset

    path = write(tmp_path / "d.jsonl", [LONG, SHORT, LONG])
    ds = RerankDataset(path, n_docs=0, max_chars=10, cache_dir=str(tmp_path / "cache"))
    assert ds.cut == 2
    record = ds.record(0)
    assert record.query == "q" * 10 and record.docs == ["p" * 10, "n" * 5, "m" * 10]
    assert ds.record(1).query == "short"
    # Another cap is another cache entry, not the cut rows of the first one.
    whole = RerankDataset(path, n_docs=0, max_chars=0, cache_dir=str(tmp_path / "cache"))
    assert whole.cut == 0 and whole.record(0).query == "q" * 50
    assert RerankDataset(path, n_docs=0, cache_dir=str(tmp_path / "cache")).cut == 0  # default 100k


def test_streaming_dataset_cuts_the_same_way(tmp_path):
    from rerankctl.data.streaming import StreamingRerankDataset

    path = write(tmp_path / "d.jsonl", [LONG, SHORT, LONG])
    ds = StreamingRerankDataset(path, n_docs=0, max_chars=10, rank=0, world_size=1)
    records = [record for _o, _l, record in ds.iter_records()]
    assert ds.cut == 2 and records[0].query == "q" * 10 and records[2].docs[0] == "p" * 10


def test_eval_and_validate_loaders_cut_with_the_same_rule(tmp_path):
    from rerankctl.data.validate import ReadCounts, load_records
    from rerankctl.eval.local import load_rerank_records

    path = write(tmp_path / "d.jsonl", [LONG, SHORT])
    counts = ReadCounts()
    records, _ = load_records(path, "rerank", max_chars=10, counts=counts)
    assert counts.cut == 1 and records[0].query == "q" * 10
    assert load_rerank_records(path, max_chars=10)[0].docs[0] == "p" * 10
    assert load_rerank_records(path)[0].query == "q" * 50  # under the 100,000 default


def test_sft_build_datasets_reports_cut_records_per_source(tmp_path, qwen3_tokenizer):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import build_datasets, log_read_cuts

    train_path = write(tmp_path / "train.jsonl", [LONG, SHORT, LONG])
    eval_path = write(tmp_path / "eval.jsonl", [LONG])
    cfg = SFTConfig(data=str(train_path), eval_data=str(eval_path), n_docs=2, max_chars=10)
    train, _eval, _ = build_datasets(cfg, qwen3_tokenizer)
    assert train.read_cuts == {str(train_path): 2, str(eval_path): 1}

    class Events:
        lines: list[str] = []

        def log_event(self, line: str) -> None:
            self.lines.append(line)

    writer = Events()
    log_read_cuts(writer, train, cfg.max_chars)
    assert len(writer.lines) == 2 and "2 record(s)" in writer.lines[0] and "10 characters" in writer.lines[0]


def test_max_chars_is_a_config_field_with_the_server_default():
    from rerankctl.config.rl import RLConfig
    from rerankctl.config.sft import SFTConfig
    from rerankctl.serve.app import ServeSettings

    assert SFTConfig().max_chars == RLConfig().max_chars == DEFAULT_MAX_CHARS == 100_000
    assert ServeSettings().max_doc_chars == DEFAULT_MAX_CHARS
    assert "before tokenising" in SFTConfig.model_fields["max_chars"].description
    with pytest.raises(ValueError):
        SFTConfig(max_chars=-1)
