"""Reports: Markdown table with deltas, JSON, PNG, atomic writes, and the run store's evals table."""

from __future__ import annotations

import json

import pytest

from rerankctl.eval.report import ResultRow, log_rows_to_store, markdown_table, to_row, write_reports

ROWS = [
    ResultRow(
        "base", "T2Reranking", "map_at_1000", 0.6500, {"mrr_at_10": 0.7, "ndcg_at_10": 0.6, "nauc_x": 1.0}
    ),
    ResultRow("base", "MMarcoReranking", "map_at_1000", 0.3000, {}),
    ResultRow("ckpt", "T2Reranking", "map_at_1000", 0.6625, {"mrr_at_10": 0.72}),
    ResultRow("ckpt", "MMarcoReranking", "map_at_1000", 0.2500, {}),
    ResultRow("ckpt", "CMedQAv1-reranking", "map_at_1000", 0.8000, {}),
]


def test_markdown_table_has_datasets_by_models_with_deltas_and_average():
    table = markdown_table(ROWS, ["base", "ckpt"])
    lines = table.strip().splitlines()
    assert lines[0] == "| Dataset | Metric | base | ckpt |"
    assert lines[2] == "| T2Reranking | map_at_1000 | 0.6500 | 0.6625 (+0.0125) |"
    assert lines[3] == "| MMarcoReranking | map_at_1000 | 0.3000 | 0.2500 (-0.0500) |"
    assert lines[4] == "| CMedQAv1-reranking | map_at_1000 | — | 0.8000 |"  # no baseline: no delta
    # Average over the datasets both models have: base (0.65+0.30)/2 = 0.475, ckpt 0.45625.
    assert lines[5] == "| **Average** (2) | main | 0.4750 | 0.4562 (-0.0187) |"


def test_write_reports_json_markdown_png_atomically(tmp_path):
    paths = write_reports(tmp_path / "out", ROWS, ["base", "ckpt"], plot=True, run_id="r1")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["eval.json", "eval.md", "eval.png"]
    data = json.loads(paths["json"].read_text())
    assert data["models"] == ["base", "ckpt"] and data["meta"] == {"run_id": "r1"}
    assert data["datasets"] == ["T2Reranking", "MMarcoReranking", "CMedQAv1-reranking"]
    assert data["results"][2]["main_score"] == 0.6625
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["markdown"].read_text() == markdown_table(ROWS, ["base", "ckpt"])


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    from rerankctl.errors import DependencyError

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(DependencyError, match="matplotlib") as err:
        write_reports(tmp_path, ROWS, plot=True)
    assert "rerankctl[plot]" in err.value.hint


def test_rows_go_to_the_run_store_evals_table():
    from rerankctl.store import RunStore

    store = RunStore.open()
    n = log_rows_to_store(store, ROWS[:1], run_id=None)
    assert n == 3  # main score + mrr_at_10 + ndcg_at_10 (nauc_* is not stored)
    got = {(e.model, e.dataset, e.metric): e.value for e in store.evals(model="base")}
    assert got == {
        ("base", "T2Reranking", "map_at_1000"): 0.65,
        ("base", "T2Reranking", "mrr_at_10"): 0.7,
        ("base", "T2Reranking", "ndcg_at_10"): 0.6,
    }


def test_to_row_from_each_result_kind():
    from rerankctl.eval.local import LocalResult
    from rerankctl.eval.mteb_runner import TaskScore
    from rerankctl.eval.two_stage import TwoStageResult

    row = to_row(TaskScore("T2Reranking", "m", "map_at_1000", 0.5, {"map_at_1000": 0.5}, 3, 30, 1.0))
    assert (row.dataset, row.main_score, row.kind) == ("T2Reranking", 0.5, "mteb")
    row = to_row(LocalResult("dev.jsonl", "m", {"map": 0.4, "mrr": 0.6}))
    assert (row.dataset, row.main_metric, row.main_score, row.kind) == ("dev.jsonl", "map", 0.4, "local")
    ts = TwoStageResult(
        "T2Retrieval", "m", "emb", 50, "ndcg_at_10", {"ndcg_at_10": 0.3}, {"ndcg_at_10": 0.45}
    )
    row = to_row(ts)
    assert row.dataset == "T2Retrieval (top-50)" and row.main_score == 0.45
    assert row.extra["gain"] == pytest.approx(0.15) and row.extra["first_stage_main_score"] == 0.3
