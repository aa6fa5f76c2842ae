"""The original tool's training files: read directly, validated, converted, loaded for training."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rerankctl.data.converters import convert_file, get_converter
from rerankctl.data.formats import RecordError, detect_kind, parse_rerank, parse_seed
from rerankctl.data.validate import validate_file

GRADED = {
    "query": "what is BM25",
    "positives_strong": ["BM25 is a ranking function"],
    "positives": ["a bag-of-words scoring function", "BM25 is a ranking function"],
    "answer": "Okapi BM25",
    "neg_medium": ["TF-IDF weighting"],
    "neg_very_hard": ["BM25F extends BM25 to fields"],
    "neg_hard": ["Lucene's default similarity"],
    "statement_false_negatives": ["BM25 is a neural model"],
    "negatives": ["cooking pasta"],
}


def test_graded_worked_example():
    rec = parse_seed(GRADED)
    assert rec.query == "what is BM25"
    assert rec.docs == [
        "BM25 is a ranking function",  # strong (its copy in positives is dropped)
        "a bag-of-words scoring function",
        "Okapi BM25",
        "BM25F extends BM25 to fields",  # tiers hardest first, whatever the key order in the file
        "Lucene's default similarity",
        "TF-IDF weighting",
        "BM25 is a neural model",
        "cooking pasta",
    ]
    assert rec.labels == [2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert parse_rerank(GRADED) == rec and detect_kind(GRADED) == "rerank"


def test_plural_and_singular_forms():
    rec = parse_rerank({"query": "q", "positives": ["p1", "p2"], "negatives": ["n1"]})
    assert (rec.docs, rec.labels) == (["p1", "p2", "n1"], [1.0, 1.0, 0.0])
    rec = parse_rerank({"query": "q", "positive": "p", "negative": "n", "instruction": "Find it"})
    assert (rec.docs, rec.labels, rec.instruction) == (["p", "n"], [1.0, 0.0], "Find it")


def test_errors_name_the_seed_field():
    with pytest.raises(RecordError) as err:
        parse_rerank({"query": "q", "positives": ["p"], "neg_hard": ["ok", 3]})
    assert err.value.field == "neg_hard[1]"
    with pytest.raises(RecordError) as err:
        parse_rerank({"query": "q", "neg_hard": ["n"]})
    assert err.value.field == "positives" and "answer" in err.value.hint


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_validate_and_convert(tmp_path):
    src = _write(tmp_path / "seed.jsonl", [GRADED, {"query": "q2", "positives": ["p"], "negatives": ["n"]}])
    report = validate_file(src)
    assert (report.kind, report.total, report.valid) == ("rerank", 2, 2)
    assert get_converter("original").NAME == "seed"
    out = tmp_path / "out.jsonl"
    conv = convert_file(src, "seed", out)
    assert (conv.rows, conv.written) == (2, 2)
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert first["labels"] == [2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0] and first["docs"][3].startswith(
        "BM25F"
    )
    assert second == {"query": "q2", "pos": ["p"], "neg": ["n"]}
    with pytest.raises(Exception, match="positives"):
        convert_file(
            _write(tmp_path / "ours.jsonl", [{"query": "q", "pos": ["p"]}]), "seed", tmp_path / "x.jsonl"
        )


def test_cli_validate_and_convert(tmp_path):
    src = _write(tmp_path / "seed.jsonl", [GRADED])
    run = [sys.executable, "-m", "rerankctl", "data"]
    ok = subprocess.run([*run, "validate", str(src)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    out = tmp_path / "conv.jsonl"
    conv = subprocess.run(
        [*run, "convert", str(src), "--from", "seed", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert conv.returncode == 0, conv.stderr
    assert json.loads(out.read_text())["docs"][0] == "BM25 is a ranking function"


def test_training_dataset_reads_seed_files(tmp_path):
    from rerankctl.data.rerank_dataset import RerankDataset

    src = _write(
        tmp_path / "seed.jsonl", [GRADED, {"query": "q2", "positive": "p", "negatives": ["n1", "n2"]}]
    )
    ds = RerankDataset(str(src), n_docs=0)
    assert len(ds) == 2
    groups = sorted((ds[i] for i in range(2)), key=lambda g: g["query"])
    assert sorted(groups[0]["labels"]) == [0.0, 0.0, 1.0] and sorted(groups[1]["labels"])[-1] == 2.0


# ---------------------------------------------------------------------------------------------- graded tiers


def test_tiers_become_hardness_grades_not_relevance():
    rec = parse_seed(GRADED)
    # docs: strong, positives, answer | very_hard, hard, medium, statement, negatives
    assert rec.hardness == [0.0, 0.0, 0.0, 3.0, 2.0, 1.0, 1.0, 0.0]
    assert rec.labels[3:] == [0.0] * 5  # every tier stays a negative
    assert parse_seed({"query": "q", "positives": ["p"], "negatives": ["n"]}).hardness is None


def test_hard_sampling_takes_the_hardest_tiers_without_teacher_scores():
    from rerankctl.data.sampling import build_group, rng_for

    rec = parse_seed(GRADED)
    for epoch in range(5):
        group = build_group(rec, n_docs=3, n_pos=1, rng=rng_for(0, epoch, 0), strategy="hard")
        assert group.docs[1:] == ["BM25F extends BM25 to fields", "Lucene's default similarity"]
        assert group.labels[1:] == [0.0, 0.0]
    # medium and statement tie at 1: the third negative is one of the two
    thirds = {
        build_group(rec, n_docs=4, n_pos=1, rng=rng_for(0, e, 0), strategy="hard").docs[3] for e in range(20)
    }
    assert thirds == {"TF-IDF weighting", "BM25 is a neural model"}
    randoms = {
        tuple(build_group(rec, n_docs=3, n_pos=1, rng=rng_for(0, e, 0), strategy="random").docs[1:])
        for e in range(20)
    }
    assert len(randoms) > 1  # random sampling ignores the tiers


def test_training_readers_keep_the_tiers(tmp_path, rerankctl_home):
    from rerankctl.data.rerank_dataset import RerankDataset
    from rerankctl.data.streaming import StreamingRerankDataset

    src = _write(tmp_path / "seed.jsonl", [GRADED])
    ds = RerankDataset(str(src), n_docs=2, n_pos=1, strategy="hard", cache_dir=str(tmp_path / "c"))
    assert ds.record(0).hardness == [0.0, 0.0, 0.0, 3.0, 2.0, 1.0, 1.0, 0.0]
    for epoch in range(3):
        ds.set_epoch(epoch)
        assert ds[0]["docs"][1] == "BM25F extends BM25 to fields"
    stream = StreamingRerankDataset(src, n_docs=2, n_pos=1, strategy="hard", rank=0, world_size=1)
    assert [g["docs"][1] for g in stream] == ["BM25F extends BM25 to fields"]
