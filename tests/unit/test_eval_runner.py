"""`rerankctl eval` option handling: proxy environment, flag validation, the local-model path."""

from __future__ import annotations

import os

import pytest

from rerankctl.errors import UsageError
from rerankctl.eval.runner import EvalOptions, apply_proxy, validate


def test_proxy_is_set_for_downloads_but_not_for_the_endpoints(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "internal.example")
    apply_proxy("http://proxy.example:3128", ["http://10.0.0.5:9997", "http://rerank.lan:80/v1/rerank"])
    assert os.environ["HTTPS_PROXY"] == os.environ["http_proxy"] == "http://proxy.example:3128"
    no_proxy = os.environ["NO_PROXY"].split(",")
    assert no_proxy[0] == "internal.example"
    assert {"localhost", "127.0.0.1", "10.0.0.5", "rerank.lan"} <= set(no_proxy)
    assert os.environ["no_proxy"] == os.environ["NO_PROXY"]


def test_no_proxy_flag_changes_nothing(monkeypatch):
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    apply_proxy(None, ["http://x"])
    assert "HTTPS_PROXY" not in os.environ


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (EvalOptions(), "nothing to evaluate"),
        (EvalOptions(endpoints=["ftp://x"]), "not an http(s) URL"),
        (EvalOptions(models=["m"], two_stage=True), "--two-stage needs a first stage"),
        (EvalOptions(models=["m"], input="a.jsonl", datasets=["chinese"]), "not both"),
        (
            EvalOptions(models=["m"], two_stage=True, embedding_endpoint="http://e", embedding_model="d"),
            "not both",
        ),
        (EvalOptions(models=["m"], batch_size=0), "--batch-size must be at least 1"),
        (EvalOptions(models=["m"], max_samples=0), "--max-samples must be at least 1"),
    ],
)
def test_bad_flag_combinations_are_usage_errors(opts, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(opts)


def test_missing_input_file_is_named(tmp_path):
    from rerankctl.errors import NotFoundError

    with pytest.raises(NotFoundError, match="nope.jsonl"):
        validate(EvalOptions(models=["m"], input=str(tmp_path / "nope.jsonl")))


def test_cli_local_model_on_the_mock_task(tiny_qwen3_path, tmp_path):
    """`--model DIR --datasets MockRerankingTask`: a local model, no server, report and store rows."""
    import json

    from typer.testing import CliRunner

    from rerankctl.cli.app import build_app

    result = CliRunner().invoke(
        build_app(),
        ["eval", "--model", str(tiny_qwen3_path), "--datasets", "MockRerankingTask", "--device", "cpu",
         "--output", str(tmp_path), "--json", "--max-samples", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [row] = report["results"]
    assert row["model"] == str(tiny_qwen3_path) and row["dataset"] == "MockRerankingTask"
    assert row["extra"]["n_queries"] == 1 and row["extra"]["n_pairs"] == 2
    assert row["main_score"] in (0.5, 1.0)  # one query, one relevant document of two
    assert (tmp_path / "eval.md").exists() and (tmp_path / "eval.json").exists()


def test_gpu_map_parsing():
    from rerankctl.cli.eval import _parse_gpu_map

    assert _parse_gpu_map(["runs/a/final=0", "runs/b=1,c=1"]) == {"runs/a/final": 0, "runs/b": 1, "c": 1}
    assert _parse_gpu_map(None) is None
    with pytest.raises(UsageError, match="MODEL_DIR=GPU_INDEX"):
        _parse_gpu_map(["runs/a"])
    with pytest.raises(UsageError):
        _parse_gpu_map(["runs/a=x"])
