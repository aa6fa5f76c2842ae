"""`eval --baseline`: the first stage's own order scored beside the model, with the delta (worked example).

The file has two judged queries:

* q1, ``docs`` in first-stage order [neg "aa", pos "bbbbbb", neg "c"]: the positive is 2nd, AP = 1/2;
* q2, ``pos``/``neg`` with scores: p 0.2, n1 0.9, n2 0.5 -> order n1, n2, p: the positive is 3rd, AP = 1/3.

First-stage MAP = MRR = (1/2 + 1/3) / 2 = 5/12; nDCG@10 = (1/log2(3) + 1/log2(4)) / 2.
The stand-in model scores a document by its length: q1 -> "bbbbbb" first (AP 1); q2 -> n1 (8), p (4),
n2 (1): the positive is 2nd (AP 1/2). Model MAP = 3/4, so the delta is 3/4 - 5/12 = 1/3.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from rerankctl.cli.app import build_app

ROWS = [
    {"query": "q1", "docs": ["aa", "bbbbbb", "c"], "labels": [0, 1, 0]},
    {"query": "q2", "pos": ["pppp"], "neg": ["nnnnnnnn", "n"], "pos_scores": [0.2], "neg_scores": [0.9, 0.5]},
]


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return str(path)


@pytest.fixture
def by_length(monkeypatch):
    """A local "model" that scores a document by its length (no torch: build_local is replaced)."""
    import rerankctl.eval.runner as runner

    monkeypatch.setattr(
        runner, "build_local", lambda opts, path, device=None: lambda q, docs: [len(d) for d in docs]
    )


def test_first_stage_metrics_by_hand(tmp_path):
    from rerankctl.eval.local import evaluate_first_stage, first_stage_scores, load_rerank_records

    path = _write(tmp_path / "dev.jsonl", ROWS)
    scores = first_stage_scores(path)
    assert scores == [[0.0, -1.0, -2.0], [0.2, 0.9, 0.5]]
    result = evaluate_first_stage(load_rerank_records(path), scores, dataset_name="dev.jsonl")
    assert result.model == "first-stage" and result.n_queries == 2
    assert result.metrics["map"] == pytest.approx(5 / 12)
    assert result.metrics["mrr"] == pytest.approx(5 / 12)
    assert result.metrics["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 2)
    assert result.metrics["p@1"] == 0.0


def test_cli_prints_both_and_the_delta_and_stores_them(tmp_path, by_length):
    from rerankctl.store import RunStore

    path = _write(tmp_path / "dev.jsonl", ROWS)
    model = tmp_path / "model"
    model.mkdir()
    args = ["eval", "--model", str(model), "--input", path, "--baseline", "--output", str(tmp_path / "out")]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0] == f"| Dataset | Metric | first-stage | {model} |"
    assert table[2] == "| dev.jsonl | map | 0.4167 | 0.7500 (+0.3333) |"

    report = json.loads((tmp_path / "out" / "eval.json").read_text("utf-8"))
    assert report["models"] == ["first-stage", str(model)]
    rows = {r["model"]: r for r in report["results"]}
    assert rows["first-stage"]["main_score"] == pytest.approx(5 / 12)
    assert rows[str(model)]["extra"]["delta"] == pytest.approx(1 / 3)
    assert rows[str(model)]["extra"]["baseline_main_score"] == pytest.approx(5 / 12)
    # per query (file order): first stage q1 0.5 (answer 2nd), q2 1/3 (3rd); by length 1.0, 0.5
    assert rows["first-stage"]["extra"]["per_query"] == pytest.approx([0.5, 1 / 3])
    assert rows[str(model)]["extra"]["per_query"] == pytest.approx([1.0, 0.5])
    paired = rows[str(model)]["extra"]["vs_baseline"]
    assert (paired["better"], paired["worse"], paired["tied"], paired["n_queries"]) == (2, 0, 0, 2)
    assert paired["delta"] == pytest.approx(1 / 3)
    # two queries: every resampled mean is one of 1/6, 1/3, 1/2, so the CI spans [1/6, 1/2]
    assert paired["ci95"] == pytest.approx([1 / 6, 1 / 2])
    assert "95% CI [+0.1667, +0.5000]; 2 queries better, 0 worse" in result.stderr

    with RunStore.open() as store:
        evals = {(e.model, e.metric): e.value for e in store.evals()}
    assert evals[("first-stage", "map")] == pytest.approx(5 / 12)
    assert evals[(str(model), "map")] == pytest.approx(3 / 4)
    assert evals[(str(model), "map_delta_vs_first_stage")] == pytest.approx(1 / 3)


def test_records_without_a_first_stage_order_are_refused_before_any_model(tmp_path, monkeypatch):
    import rerankctl.eval.runner as runner
    from rerankctl.errors import DataError
    from rerankctl.eval.runner import EvalOptions, run_eval

    monkeypatch.setattr(runner, "build_local", lambda *a, **k: pytest.fail("a model was loaded"))
    path = _write(tmp_path / "posneg.jsonl", [ROWS[0], {"query": "q", "pos": ["a"], "neg": ["b"]}])
    with pytest.raises(
        DataError, match=r"posneg.jsonl:2: --baseline: this record carries no first-stage order"
    ):
        run_eval(EvalOptions(models=["m"], input=path, baseline=True, store=False), progress=lambda _: None)


def test_mteb_tasks_have_no_first_stage_order():
    from rerankctl.errors import UsageError
    from rerankctl.eval.runner import EvalOptions, validate

    with pytest.raises(UsageError, match="--baseline needs the first stage's order"):
        validate(EvalOptions(endpoints=["http://x"], baseline=True))


def test_a_failing_model_keeps_the_baseline_but_counts_no_model_result(tmp_path, monkeypatch, capsys):
    import rerankctl.eval.runner as runner
    from rerankctl.cli.main import main

    def broken(query, docs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(runner, "build_local", lambda opts, path, device=None: broken)
    path = _write(tmp_path / "dev.jsonl", ROWS)
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(SystemExit) as exc:
        main(
            ["eval", "--model", str(model), "--input", path, "--baseline", "--output", str(tmp_path / "out")]
        )
    err = capsys.readouterr().err
    assert exc.value.code == 1 and "out of memory" in err and "0 task result(s) already scored" in err
    report = json.loads((tmp_path / "out" / "eval.json").read_text("utf-8"))
    assert [r["model"] for r in report["results"]] == ["first-stage"]
