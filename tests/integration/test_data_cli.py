"""`rerankctl data ...` end to end through the real entry point (exit codes, files, messages)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rerankctl.cli.main import main


def run(argv, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_synth_validate_stats_split_sample_round_trip(tmp_path, capsys, qwen3_tokenizer_path):
    data = tmp_path / "r.jsonl"
    code, out, _ = run(
        ["data", "synth", "--kind", "rerank", "--lang", "zh", "-n", "40", "--seed", "1", "-o", str(data)],
        capsys,
    )
    assert code == 0 and "wrote 40 rerank records (zh)" in out
    first = data.read_bytes()
    run(
        ["data", "synth", "--kind", "rerank", "--lang", "zh", "-n", "40", "--seed", "1", "-o", str(data)],
        capsys,
    )
    assert data.read_bytes() == first  # deterministic

    code, out, _ = run(["data", "validate", str(data)], capsys)
    assert code == 0 and "rerank, 40 records, 40 valid, 0 invalid" in out

    code, out, _ = run(
        [
            "data",
            "stats",
            str(data),
            "--json",
            "--tokenizer",
            str(qwen3_tokenizer_path),
            "--max-length",
            "80",
        ],
        capsys,
    )
    stats = json.loads(out)
    assert stats["records"] == 40 and stats["docs"] == sum(
        len(r["pos"]) + len(r["neg"]) for r in read_jsonl(data)
    )
    assert stats["positive_ratio"] == pytest.approx(
        sum(len(r["pos"]) for r in read_jsonl(data)) / stats["docs"]
    )
    assert stats["prompt_tokens"]["min"] > 60 and stats["max_length"] == 80
    assert 0 < stats["overlength_pairs"] <= stats["docs"]

    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    code, out, _ = run(
        [
            "data",
            "split",
            str(data),
            "--test-frac",
            "0.25",
            "--seed",
            "3",
            "--train-output",
            str(train),
            "--test-output",
            str(test),
        ],
        capsys,
    )
    assert code == 0
    train_q = {r["query"] for r in read_jsonl(train)}
    test_q = {r["query"] for r in read_jsonl(test)}
    assert not train_q & test_q and len(read_jsonl(train)) + len(read_jsonl(test)) == 40
    assert len(test_q) == round(0.25 * len(train_q | test_q))

    sample = tmp_path / "s.jsonl"
    code, out, _ = run(["data", "sample", str(data), "-n", "5", "-o", str(sample)], capsys)
    rows = read_jsonl(sample)
    assert code == 0 and len(rows) == 5 and all(r in read_jsonl(data) for r in rows)


def test_validate_bad_file_exit_2_and_clean_output(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    good = {"query": "q", "pos": ["p"], "neg": ["n"]}
    data.write_text(
        "\n".join([json.dumps(good), json.dumps({"query": "q", "pos": ["p"], "neg": [3]}), "{x"]) + "\n"
    )
    code, out, _ = run(["data", "validate", str(data)], capsys)
    assert code == 2
    assert f"{data}:2: field 'neg[0]': expected a string, got int" in out
    assert f"{data}:3: not valid JSON" in out
    clean = tmp_path / "clean.jsonl"
    code, out, _ = run(
        ["data", "validate", str(data), "--skip-invalid", "--output", str(clean), "--json"], capsys
    )
    report = json.loads(out)
    assert code == 0 and report["invalid"] == 2 and report["written"] == 1
    assert read_jsonl(clean) == [good]


def test_convert_and_errors_are_one_line(tmp_path, capsys):
    src = tmp_path / "hh.jsonl"
    src.write_text(
        json.dumps(
            {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go"}
        )
        + "\n"
    )
    out_file = tmp_path / "pref.jsonl"
    code, out, _ = run(["data", "convert", str(src), "--from", "hh-rlhf", "--output", str(out_file)], capsys)
    assert code == 0 and "1 written" in out
    assert read_jsonl(out_file) == [
        {
            "prompt": [{"role": "user", "content": "hi"}],
            "chosen": [{"role": "assistant", "content": "hello"}],
            "rejected": [{"role": "assistant", "content": "go"}],
        }
    ]
    code, out, _ = run(["data", "validate", str(out_file)], capsys)
    assert code == 0 and "preference, 1 records" in out

    code, _, err = run(["data", "convert", str(src), "--from", "nope", "--output", str(out_file)], capsys)
    assert code == 2 and err.startswith("error: unknown source format 'nope'") and err.count("\n") == 1
    code, _, err = run(
        ["data", "convert", str(src), "--from", "msmarco", "--output", str(tmp_path / "x.jsonl")], capsys
    )
    assert code == 2 and f"{src}:1" in err and not (tmp_path / "x.jsonl").exists()
    code, _, err = run(["data", "validate", str(tmp_path / "missing.jsonl")], capsys)
    assert code == 2 and "no such file" in err


def test_synth_vl_writes_images_next_to_the_file(tmp_path, capsys):
    out_file = tmp_path / "sub" / "vl.jsonl"
    code, out, _ = run(["data", "synth", "--kind", "vl", "-n", "4", "-o", str(out_file)], capsys)
    assert code == 0
    rows = read_jsonl(out_file)
    assert all((out_file.parent / r["image"]).is_file() for r in rows)
    assert rows[0]["image"].startswith("vl_images/")
    code, out, _ = run(["data", "validate", str(out_file)], capsys)
    assert code == 0 and "vl, 4 records, 4 valid" in out
    code, out, _ = run(
        ["data", "synth", "--kind", "preference", "-n", "3", "-o", str(tmp_path / "p.jsonl")], capsys
    )
    assert code == 0 and len(read_jsonl(tmp_path / "p.jsonl")) == 3


def test_data_help_imports_nothing_heavy():
    code = (
        "import sys; from rerankctl.cli.main import main\n"
        "try:\n    main(['data', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'numpy', 'pyarrow') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
