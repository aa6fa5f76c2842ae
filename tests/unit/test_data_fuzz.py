"""Hypothesis fuzzing of the readers and converters.

Malformed lines, wrong types, empty strings and odd Unicode (unpaired surrogates, NULs,
combining marks, right-to-left text) must never raise anything but a RerankctlError;
every bad line is reported with its line number; outputs are complete or absent.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankctl.data.converters import CONVERTERS, convert_file
from rerankctl.data.formats import PARSERS, RecordError
from rerankctl.data.io import parse_json_line
from rerankctl.data.streaming import StreamingRerankDataset
from rerankctl.data.validate import validate_file
from rerankctl.errors import DataError, RerankctlError

ODD = st.sampled_from(
    ["", " ", "\x00", "\ud800", "é", "e\u0301", "שלום", "😀", "\u200b", "\n", "\t", "中文", "\\"]
)
TEXT = st.one_of(st.text(max_size=12), ODD, st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
TEXT_LIST = st.one_of(st.lists(TEXT, max_size=3), JSON)
MESSAGES = st.one_of(
    st.lists(
        st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "bot", 3]), "content": TEXT}),
        max_size=3,
    ),
    JSON,
)
TRANSCRIPT = st.one_of(
    st.lists(st.tuples(st.sampled_from(["Human", "Assistant"]), TEXT), max_size=4).map(
        lambda turns: "".join(f"\n\n{who}: {text}" for who, text in turns)
    ),
    JSON,
)


def record(fields):
    """Dicts with a random subset of ``fields`` (name -> strategy) plus the odd stray key."""
    return st.fixed_dictionaries({}, optional=fields)


SOURCES = {
    "rerank": record(
        {
            "query": TEXT,
            "pos": TEXT_LIST,
            "neg": TEXT_LIST,
            "pos_scores": JSON,
            "docs": TEXT_LIST,
            "labels": JSON,
        }
    ),
    "flagembedding": record(
        {"query": TEXT, "pos": TEXT_LIST, "neg": TEXT_LIST, "prompt": TEXT, "neg_scores": JSON}
    ),
    "ms-swift": record(
        {"messages": MESSAGES, "positive_messages": st.lists(MESSAGES, max_size=2), "negative_messages": JSON}
    ),
    "sentence-transformers": record(
        {"anchor": TEXT, "positive": TEXT, "negative_1": TEXT, "negative_12": JSON}
    ),
    "hh-rlhf": record({"chosen": TRANSCRIPT, "rejected": TRANSCRIPT}),
    "stack-exchange-paired": record({"question": TEXT, "response_j": TEXT, "response_k": TEXT}),
    "rm-static": record({"prompt": TRANSCRIPT, "chosen": TEXT, "rejected": TEXT}),
    "helpsteer3": record(
        {"context": MESSAGES, "response1": TEXT, "response2": TEXT, "overall_preference": JSON}
    ),
    "ultrafeedback": record(
        {"chosen": MESSAGES, "rejected": MESSAGES, "score_chosen": JSON, "score_rejected": JSON}
    ),
    "preference": record(
        {
            "prompt": st.one_of(TEXT, MESSAGES),
            "chosen": st.one_of(TEXT, MESSAGES),
            "rejected": TEXT,
            "margin": JSON,
        }
    ),
    "vl": record({"id": JSON, "query": TEXT, "image": TEXT, "response": TEXT_LIST, "human_ranking": JSON}),
}
# Mostly well-formed records whose texts are fuzzed (so they can still be empty or odd).
WORD = st.one_of(st.text(min_size=1, max_size=12), ODD)
WORDS = st.lists(WORD, min_size=1, max_size=3)
USER_MSG = st.fixed_dictionaries({"role": st.just("user"), "content": WORD})
BOT_MSG = st.fixed_dictionaries({"role": st.just("assistant"), "content": WORD})
CHAT = st.tuples(USER_MSG, BOT_MSG, BOT_MSG).map(lambda t: {"chosen": [t[0], t[1]], "rejected": [t[0], t[2]]})
SHAPED = {
    "rerank": st.fixed_dictionaries({"query": WORD, "pos": WORDS, "neg": WORDS}),
    "flagembedding": st.fixed_dictionaries({"query": WORD, "pos": WORDS, "neg": WORDS, "prompt": WORD}),
    "ms-swift": st.fixed_dictionaries(
        {
            "messages": st.lists(USER_MSG, min_size=1, max_size=1),
            "positive_messages": st.lists(st.lists(BOT_MSG, min_size=1, max_size=1), min_size=1, max_size=2),
        }
    ),
    "sentence-transformers": st.fixed_dictionaries({"anchor": WORD, "positive": WORD, "negative": WORD}),
    "hh-rlhf": st.tuples(WORD, WORD, WORD).map(
        lambda t: {
            "chosen": f"\n\nHuman: {t[0]}\n\nAssistant: {t[1]}",
            "rejected": f"\n\nHuman: {t[0]}\n\nAssistant: {t[2]}",
        }
    ),
    "stack-exchange-paired": st.fixed_dictionaries(
        {"question": WORD, "response_j": WORD, "response_k": WORD}
    ),
    "rm-static": st.tuples(WORD, WORD, WORD).map(
        lambda t: {"prompt": f"\n\nHuman: {t[0]}\n\nAssistant:", "chosen": t[1], "rejected": t[2]}
    ),
    "helpsteer3": st.fixed_dictionaries(
        {
            "context": st.lists(USER_MSG, min_size=1, max_size=1),
            "response1": WORD,
            "response2": WORD,
            "overall_preference": st.integers(-3, 3),
        }
    ),
    "ultrafeedback": CHAT,
    "preference": st.one_of(CHAT, st.fixed_dictionaries({"prompt": WORD, "chosen": WORD, "rejected": WORD})),
    "vl": st.fixed_dictionaries(
        {
            "id": WORD,
            "query": WORD,
            "image": WORD,
            "response": st.lists(WORD, min_size=2, max_size=2),
            "human_ranking": st.sampled_from([[0, 1], [1, 0]]),
        }
    ),
}
RAW_LINES = st.one_of(TEXT, st.just("{"), st.just("[1, 2"), st.just('{"query": "q", "pos": ["p"]} trailing'))
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def lines_for(source):
    """A file body: a mix of JSON records in the source shape and raw garbage lines."""
    as_json = SOURCES[source].map(json.dumps)
    shaped = SHAPED[source].map(json.dumps)
    return st.lists(
        st.one_of(shaped, shaped, as_json, RAW_LINES.map(lambda s: s.replace("\n", " "))),
        min_size=1,
        max_size=8,
    )


def write_lines(folder: Path, lines: list[str]) -> Path:
    path = folder / "data.jsonl"
    # Lines may hold lone surrogates (from the raw strategy): write them the way a broken tool would.
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    return path


def oracle(path: Path, check) -> dict[int, bool]:
    """line -> whether that line, parsed alone, is a valid record (blank lines absent)."""
    out = {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        obj, error = parse_json_line(raw)
        ok = error is None
        if ok:
            try:
                check(obj)
            except RecordError:
                ok = False
        out[number] = ok
    return out


@FUZZ
@given(kind=st.sampled_from(["rerank", "preference", "vl"]), data=st.data())
def test_validate_reports_every_bad_line(kind, data):
    lines = data.draw(lines_for(kind))
    with tempfile.TemporaryDirectory() as folder:
        path = write_lines(Path(folder), lines)
        expected = oracle(path, PARSERS[kind])
        out = Path(folder) / "clean.jsonl"
        if not expected:  # only blank lines: the one reader calls the file empty, everywhere
            with pytest.raises(DataError, match="empty file"):
                validate_file(path, kind=kind, max_errors=1000, output=out, check_images=False)
            assert not out.exists()
            return
        report = validate_file(path, kind=kind, max_errors=1000, output=out, check_images=False)
        bad = sorted(n for n, ok in expected.items() if not ok)
        assert report.total == len(expected)
        assert sorted(e.line for e in report.errors) == bad
        assert all(isinstance(e, DataError) and e.path == str(path) for e in report.errors)
        # The clean output holds exactly the good lines, each valid on its own.
        written = out.read_text(encoding="utf-8").splitlines()
        assert len(written) == report.valid == len(expected) - len(bad)
        for line in written:
            PARSERS[kind](json.loads(line))
        assert sorted(os.listdir(folder)) == ["clean.jsonl", "data.jsonl"]


@FUZZ
@given(source=st.sampled_from(sorted(set(SOURCES) & set(CONVERTERS))), data=st.data())
def test_converters_never_raise_raw_and_write_atomically(source, data):
    lines = data.draw(lines_for(source))
    converter = CONVERTERS[source]
    with tempfile.TemporaryDirectory() as folder:
        path = write_lines(Path(folder), lines)
        out = Path(folder) / "out.jsonl"
        try:
            report = convert_file(path, source, out, skip_invalid=True, max_errors=1000)
        except DataError as exc:
            assert "no record could be converted" in exc.message or "empty file" in exc.message
            assert not out.exists()
        else:
            assert report.rows == report.written + report.dropped + report.invalid
            assert len(report.errors) == report.invalid
            written = out.read_text(encoding="utf-8").splitlines()
            assert len(written) == report.written
            for line in written:
                PARSERS[converter.KIND](json.loads(line))
        # Strict mode: either everything converts or a DataError and no output at all.
        strict = Path(folder) / "strict.jsonl"
        try:
            convert_file(path, source, strict)
        except RerankctlError:
            assert not strict.exists()
        assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_streaming_skips_exactly_the_bad_lines(data):
    lines = data.draw(lines_for("rerank"))
    with tempfile.TemporaryDirectory() as folder:
        path = write_lines(Path(folder), lines)
        expected = oracle(path, PARSERS["rerank"])
        if not expected:  # only blank lines: an empty file is an error, not zero records
            with pytest.raises(DataError, match="empty file"):
                list(StreamingRerankDataset(path, n_docs=3, skip_invalid=True, rank=0, world_size=1))
            return
        total = 0
        for rank in range(2):
            ds = StreamingRerankDataset(path, n_docs=3, skip_invalid=True, rank=rank, world_size=2)
            total += sum(1 for _ in ds)
        assert total == sum(expected.values())
        if not all(expected.values()):
            try:
                list(StreamingRerankDataset(path, rank=0, world_size=1))
            except DataError as exc:
                assert exc.line == min(n for n, ok in expected.items() if not ok)
            else:
                raise AssertionError("a bad line went unreported")


@settings(max_examples=30, deadline=None)
@given(cells=st.lists(st.lists(TEXT, min_size=0, max_size=4), min_size=1, max_size=5))
def test_csv_reader_survives_anything(cells):
    import csv

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.csv"
        with open(path, "w", encoding="utf-8", errors="surrogatepass", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["query", "pos", "neg"])
            writer.writerows(cells)
        try:
            report = validate_file(path, kind="rerank", max_errors=1000)
        except DataError as exc:  # a header and nothing (or only empty rows) is the empty-file verdict
            assert "empty file" in exc.message
            return
        assert report.valid + report.invalid == report.total
        assert len(report.errors) == report.invalid


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rerank_dataset_skip_invalid_keeps_exactly_the_good_lines(data):
    from rerankctl.data.rerank_dataset import RerankDataset

    lines = data.draw(lines_for("rerank"))
    with tempfile.TemporaryDirectory() as folder:
        path = write_lines(Path(folder), lines)
        expected = oracle(path, PARSERS["rerank"])
        try:
            ds = RerankDataset(path, n_docs=2, skip_invalid=True, cache_dir=str(Path(folder) / "cache"))
        except DataError as exc:
            assert not any(expected.values()) and (
                "no valid records" in exc.message or (not expected and "empty file" in exc.message)
            )
        else:
            assert len(ds) == sum(expected.values())
            assert ds.skipped == len(expected) - len(ds)
