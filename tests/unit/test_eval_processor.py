"""`eval --input FILE --processor FILE:CLASS`: a custom record shape evaluated through the one reader.

The raw file holds the worked example of tests/unit/test_eval_baseline.py in a shape of its own
(``question``/``candidates`` with a ``good`` flag); the processor maps it to ``docs``/``labels`` and
drops the ``skip`` row. The metrics must be the worked example's: first stage MAP 5/12 on the
``docs`` order, the length "model" MAP 3/4 (delta 1/3), and the dropped row must not count.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rerankctl.cli.app import build_app

RAW = [
    {"question": "q1", "candidates": [["aa", 0], ["bbbbbb", 1], ["c", 0]]},
    {"question": "skip me", "candidates": []},
    {"question": "q2", "candidates": [["nnnnnnnn", 0], ["n", 0], ["pppp", 1]]},
]

PROCESSOR = """
class Candidates:
    def __call__(self, record):
        if not record["candidates"]:
            return None
        return {
            "query": record["question"],
            "docs": [text for text, _ in record["candidates"]],
            "labels": [good for _, good in record["candidates"]],
        }
"""


@pytest.fixture
def files(tmp_path):
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in RAW), "utf-8")
    proc = tmp_path / "proc.py"
    proc.write_text(PROCESSOR, "utf-8")
    model = tmp_path / "model"
    model.mkdir()
    return raw, proc, model


@pytest.fixture
def by_length(monkeypatch):
    import rerankctl.eval.runner as runner

    monkeypatch.setattr(
        runner, "build_local", lambda opts, path, device=None: lambda q, docs: [len(d) for d in docs]
    )


def test_eval_reads_input_through_the_processor(files, tmp_path, by_length):
    raw, proc, model = files
    args = ["eval", "--model", str(model), "--input", str(raw), "--processor", f"{proc}:Candidates",
            "--baseline", "--output", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "eval.json").read_text("utf-8"))
    rows = {r["model"]: r for r in report["results"]}
    # q2's docs order [n8, n1, p]: the positive is 3rd (AP 1/3); q1's is 2nd (AP 1/2).
    assert rows["first-stage"]["main_score"] == pytest.approx(5 / 12)
    assert rows[str(model)]["main_score"] == pytest.approx(3 / 4)


def _exit(args, capsys) -> tuple[int, str]:
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, capsys.readouterr().err


def test_without_the_processor_the_same_file_is_a_line_error(files, by_length, capsys):
    raw, _proc, model = files
    code, err = _exit(["eval", "--model", str(model), "--input", str(raw)], capsys)
    assert code == 2
    assert f"{raw}:1" in err and "query" in err


def test_processor_without_input_is_refused(files, capsys):
    _raw, proc, model = files
    code, err = _exit(["eval", "--model", str(model), "--processor", f"{proc}:Candidates"], capsys)
    assert code == 2
    assert "--processor" in err and "--input" in err


def test_missing_processor_class_is_refused_before_models_load(files, monkeypatch, capsys):
    import rerankctl.eval.runner as runner

    raw, proc, model = files
    monkeypatch.setattr(runner, "build_local", lambda *a, **k: pytest.fail("a model was loaded"))
    code, err = _exit(
        ["eval", "--model", str(model), "--input", str(raw), "--processor", f"{proc}:Nope"], capsys
    )
    assert code == 2
    assert "Nope" in err
