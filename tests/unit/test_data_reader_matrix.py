"""One reader for every data path: `data validate` and `train sft` give the same verdict.

Each case (UTF-8 BOM, gzip, latin-1 bytes, an empty file, a broken JSON line) goes
through the real CLI entry point twice, as `rerankctl data validate FILE` and as
`rerankctl train sft --data FILE`; a bad file must stop both with exit 2 and the same
`file:line` message. Good files (BOM, gzip) must validate and load into the very
datasets training uses (training itself is the slow test at the end).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from rerankctl.cli.main import main

GOOD = '{"query": "what is a cat", "pos": ["a cat is a small feline"], "neg": ["a dog barks", "rain"]}\n'


def write_case(folder: Path, case: str) -> Path:
    """A data file for ``case``; every good record is GOOD."""
    if case == "bom":
        path = folder / "bom.jsonl"
        path.write_bytes(b"\xef\xbb\xbf" + (GOOD * 3).encode())
    elif case == "gzip":
        path = folder / "data.jsonl.gz"
        path.write_bytes(gzip.compress((GOOD * 3).encode()))
    elif case == "latin1":
        path = folder / "latin1.jsonl"
        bad = '{"query": "caf\xe9 au lait", "pos": ["a"], "neg": ["b"]}\n'.encode("latin-1")
        path.write_bytes(GOOD.encode() + bad + GOOD.encode())
    elif case == "empty":
        path = folder / "empty.jsonl"
        path.write_bytes(b"\n\n")  # only blank lines: still empty
    elif case == "broken":
        path = folder / "broken.jsonl"
        path.write_text(GOOD + GOOD + '{"query": "q", "pos": ["a"], "neg": ["b"\n', encoding="utf-8")
    else:  # pragma: no cover
        raise ValueError(case)
    return path


# case -> (the "file:line" part, what the message says); line None = no line (a whole-file verdict)
BAD = {
    "latin1": (2, r"field 'query': not UTF-8: byte 0xE9"),
    "empty": (None, r"empty file: no records"),
    "broken": (3, r"not valid JSON: Expecting ',' delimiter \(column \d+\)"),
}


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["validate", "validate --kind rerank", "train sft"])
def test_bad_files_get_the_same_exit_2_verdict_everywhere(case, command, tmp_path, tiny_qwen3_path, capsys):
    path = write_case(tmp_path, case)
    if command.startswith("validate"):
        argv = ["data", *command.split(), str(path)]
    else:
        argv = ["train", "sft", "--model", str(tiny_qwen3_path), "--data", str(path), "--max-steps", "1"]
        argv += ["--output", str(tmp_path / "out")]
    code, out, err = run_cli(argv, capsys)
    text = out + err
    line, message = BAD[case]
    where = re.escape(f"{path}:{line}:") if line else re.escape(f"{path}: ")
    assert code == 2, text
    assert re.search(where + r".*" + message, text), text
    assert "Traceback" not in text and "UnicodeDecodeError" not in text
    assert "at at" not in text


@pytest.mark.parametrize("case", ["bom", "gzip"])
def test_bom_and_gzip_files_validate_and_load_for_training(case, tmp_path, qwen3_tokenizer, capsys):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import build_datasets

    path = write_case(tmp_path, case)
    code, out, err = run_cli(["data", "validate", str(path)], capsys)
    assert code == 0, out + err
    assert "3 records, 3 valid, 0 invalid" in out
    train, _eval, _dropped = build_datasets(SFTConfig(data=str(path), n_docs=2), qwen3_tokenizer)
    assert len(train) == 3
    assert train.dataset.record(0).query == "what is a cat"  # the BOM is not part of the first key


@pytest.mark.parametrize("case", ["bom", "gzip", "latin1", "empty", "broken"])
def test_stats_split_and_streaming_share_the_verdict(case, tmp_path):
    """The other readers (stats, split, the streaming dataset) go through the same code."""
    from rerankctl.data.stats import file_stats
    from rerankctl.data.streaming import StreamingRerankDataset
    from rerankctl.errors import DataError

    path = write_case(tmp_path, case)
    if case in ("bom", "gzip"):
        assert len(list(StreamingRerankDataset(path, n_docs=2, rank=0, world_size=1))) == 3
        file_stats(path)
        return
    line, message = BAD[case]
    with pytest.raises(DataError) as exc_info:
        list(StreamingRerankDataset(path, n_docs=2, rank=0, world_size=1))
    assert exc_info.value.line == line and re.search(message, exc_info.value.message)


def test_json_error_messages_never_say_at_at():
    from rerankctl.data.io import parse_json_line

    _obj, error = parse_json_line(b'{"query": "unterminated')
    assert error == "not valid JSON: Unterminated string starting at (column 11)"
    _obj, error = parse_json_line(b'{"query": "q",}\n')
    assert error is not None and error.endswith("(column 15)")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["bom", "gzip"])
def test_train_sft_trains_on_bom_and_gzip_files(case, tmp_path, tiny_qwen3_path, capsys):
    path = write_case(tmp_path, case)
    argv = ["train", "sft", "--model", str(tiny_qwen3_path), "--data", str(path), "--max-steps", "1"]
    argv += ["--n-docs", "2", "--batch-size", "1", "--output", str(tmp_path / "out")]
    main_code = 0
    try:
        main(argv)
    except SystemExit as exc:
        main_code = int(exc.code or 0)
    assert main_code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "final").is_dir()
