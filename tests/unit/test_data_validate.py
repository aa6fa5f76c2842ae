"""File validation: line numbers, fields, skip-invalid counting, atomic clean output, CSV/Parquet."""

from __future__ import annotations

import json
import os

import pytest

from rerankctl.data.io import atomic_writer, iter_rows, write_jsonl
from rerankctl.data.validate import load_records, validate_file
from rerankctl.errors import DataError, NotFoundError

GOOD = {"query": "q", "pos": ["p"], "neg": ["n"]}


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_report_counts_and_names_line_and_field(tmp_path):
    path = _write(
        tmp_path / "d.jsonl",
        [
            json.dumps(GOOD),
            "",
            json.dumps({"query": "q", "pos": ["p"], "neg": [1]}),
            "{oops",
            json.dumps(GOOD),
        ],
    )
    report = validate_file(path)
    assert (report.kind, report.total, report.valid, report.invalid) == ("rerank", 4, 2, 2)
    first, second = report.errors
    assert (first.line, first.field, first.path) == (3, "neg[0]", str(path))
    assert str(first).startswith(f"{path}:3: field 'neg[0]': expected a string, got int")
    assert second.line == 4 and "not valid JSON" in second.message
    assert not report.ok


def test_max_errors_keeps_the_first_ones_but_counts_all(tmp_path):
    path = _write(tmp_path / "d.jsonl", [json.dumps({"query": ""})] * 30)
    report = validate_file(path, kind="rerank", max_errors=5)
    assert report.invalid == 30 and [e.line for e in report.errors] == [1, 2, 3, 4, 5]


def test_output_gets_the_valid_rows_unchanged(tmp_path):
    extra = {**GOOD, "source": "kept"}
    path = _write(tmp_path / "d.jsonl", [json.dumps(extra), "nope", json.dumps(GOOD)])
    out = tmp_path / "clean.jsonl"
    report = validate_file(path, output=out)
    assert report.written == 2
    assert [json.loads(x) for x in out.read_text().splitlines()] == [extra, GOOD]


def test_undetectable_kind_and_missing_file(tmp_path):
    path = _write(tmp_path / "d.jsonl", [json.dumps({"text": "x"})])
    with pytest.raises(DataError, match="cannot tell"):
        validate_file(path)
    with pytest.raises(NotFoundError):
        validate_file(tmp_path / "missing.jsonl")


def test_vl_missing_image_is_reported_with_line(tmp_path):
    (tmp_path / "ok.png").write_bytes(b"not checked here")
    rec = {"id": 1, "query": "q", "image": "ok.png", "response": ["a", "b"], "human_ranking": [0, 1]}
    path = _write(tmp_path / "vl.jsonl", [json.dumps(rec), json.dumps({**rec, "image": "gone.png"})])
    report = validate_file(path)
    assert report.kind == "vl" and report.invalid == 1
    assert (report.errors[0].line, report.errors[0].field) == (2, "image")
    assert validate_file(path, check_images=False).ok


def test_load_records_raises_first_error_or_skips(tmp_path):
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps({"query": "q"})])
    with pytest.raises(DataError) as info:
        load_records(path)
    assert info.value.line == 2 and info.value.field == "pos"
    records, skipped = load_records(path, skip_invalid=True)
    assert len(records) == 1 and skipped == 1


def test_csv_rows_use_file_lines_and_json_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('query,pos,neg\nq1,"[""a""]","[""b"", ""c""]"\nq2,"[""a""]",\n"",x,y\n', encoding="utf-8")
    report = validate_file(path, kind="rerank")
    assert report.valid == 2 and report.invalid == 1
    assert report.errors[0].line == 4 and report.errors[0].field == "query"
    records, _ = load_records(path, kind="rerank", skip_invalid=True)
    assert records[0].docs == ["a", "b", "c"] and records[1].docs == ["a"]


def test_parquet_rows_are_numbered(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, {"query": "", "pos": ["p"], "neg": []}]), path)
    report = validate_file(path)
    assert report.valid == 1 and report.errors[0].line == 2


def test_json_array_and_gzip(tmp_path):
    import gzip

    (tmp_path / "a.json").write_text(json.dumps([GOOD, {"query": 1}]))
    report = validate_file(tmp_path / "a.json", kind="rerank")
    assert report.valid == 1 and report.errors[0].line == 2
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(GOOD) + "\n")
    assert [r.obj for r in iter_rows(tmp_path / "b.jsonl.gz")] == [GOOD]


def test_non_utf8_line_is_reported(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\xfe\n")
    report = validate_file(path)
    assert report.invalid == 1 and "not UTF-8" in report.errors[0].message and report.errors[0].line == 2


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]
    assert write_jsonl(target, [{"a": "é"}]) == 1
    assert target.read_text(encoding="utf-8") == '{"a": "é"}\n'


def test_written_records_never_contain_unicode_line_breaks(tmp_path):
    from rerankctl.data.io import dumps

    text = dumps({"doc": "a\u0085b\u2028c\u2029d é 中"})
    assert len(text.splitlines()) == 1 and json.loads(text) == {"doc": "a\u0085b\u2028c\u2029d é 中"}
    assert "é 中" in text  # other non-ASCII stays readable
