"""`rerankctl eval` against a real `rerankctl serve` app on loopback, with the tiny Qwen3 model.

The same model scores through the endpoint and in-process; the results must agree. Broken
endpoints (refused, 500s, wrong shape) end with a message naming the endpoint, and what was
scored before a failure stays in the report, the run store and the client's score cache.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rerankctl.cli.main import main
from rerankctl.eval.mteb_runner import MTEBRerankEvaluator


@pytest.fixture(scope="module")
def local_model(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    return Qwen3Reranker(str(tiny_qwen3_path), device="cpu")


@pytest.fixture(scope="module")
def server(tiny_qwen3_path):
    from rerankctl.serve.app import ServeSettings, create_app
    from rerankctl.serve.backends import load_backend
    from rerankctl.serve.runner import BackgroundServer

    backend = load_backend(str(tiny_qwen3_path), device="cpu")
    with BackgroundServer(create_app(backend, ServeSettings())) as srv:
        yield srv.url


def _app(handler):
    """A minimal rerank server whose /v1/rerank answer is ``handler(body) -> (status, json)``."""
    app = FastAPI()

    @app.post("/v1/rerank")
    async def rerank(request: Request):
        status, body = handler(await request.json())
        return JSONResponse(body, status_code=status)

    return app


def _by_length(body):
    docs = body["documents"]
    return 200, {"results": [{"index": i, "relevance_score": float(len(d))} for i, d in enumerate(docs)]}


@pytest.fixture()
def serve_app():
    from rerankctl.serve.runner import BackgroundServer

    started = []

    def start(app):
        srv = BackgroundServer(app).start()
        started.append(srv)
        return srv.url

    yield start
    for srv in started:
        srv.stop()


def run_cli(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_endpoint_and_in_process_model_give_the_same_mteb_scores(server, local_model, tmp_path):
    from rerankctl.serve.client import APIReranker

    client = APIReranker(server, batch_size=2, max_concurrency=4, cache_dir=str(tmp_path / "cache"))
    via_http = MTEBRerankEvaluator(client, workers=4).evaluate("MockRerankingTask")
    in_process = MTEBRerankEvaluator(local_model, batch_size=4).evaluate("MockRerankingTask")
    assert via_http.main_score == pytest.approx(in_process.main_score, abs=1e-6)
    for key in ("map_at_1000", "mrr_at_10", "ndcg_at_10", "precision_at_1", "recall_at_1"):
        assert via_http.metrics[key] == pytest.approx(in_process.metrics[key], abs=1e-6), key
    assert via_http.n_pairs == in_process.n_pairs == 4
    # And the raw scores themselves, pair by pair.
    groups = [("what is bm25", ["a ranking function", "a kind of fish", "okapi bm25 weighs terms"])]
    from rerankctl.eval.scoring import as_scorer

    http_scores = as_scorer(client).score_groups(groups)[0]
    local_scores = as_scorer(local_model).score_groups(groups)[0]
    assert http_scores == pytest.approx(local_scores, abs=1e-5)


def _write_jsonl(path: Path) -> Path:
    rows = [
        {"query": "capital of france", "pos": ["Paris is the capital of France."],
         "neg": ["Berlin is in Germany.", "The Seine is a river.", "Lyon is a French city."]},
        {"query": "bm25", "pos": ["BM25 is a ranking function.", "Okapi BM25 weighs terms."],
         "neg": ["A fish.", "Bananas are yellow."]},
        {"query": "graded", "docs": ["best", "good", "bad"], "labels": [2, 1, 0], "instruction": "Judge it"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_local_jsonl_endpoint_equals_model_and_writes_reports(server, tiny_qwen3_path, tmp_path, capsys):
    data = _write_jsonl(tmp_path / "dev.jsonl")
    out_dir = tmp_path / "report"
    code, out, err = run_cli(
        ["eval", "--endpoints", server, "--model", str(tiny_qwen3_path), "--input", str(data),
         "--output", str(out_dir), "--device", "cpu", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    by_model = {r["model"]: r for r in report["results"]}
    assert set(by_model) == {server, str(tiny_qwen3_path)}
    http_m, local_m = by_model[server]["metrics"], by_model[str(tiny_qwen3_path)]["metrics"]
    assert set(http_m) >= {"mrr", "map", "ndcg@1", "ndcg@5", "ndcg@10", "p@1", "p@5", "r@5", "r@10"}
    for key in http_m:
        assert http_m[key] == pytest.approx(local_m[key], abs=1e-6), key
    assert by_model[server]["extra"]["n_queries"] == 3
    md = (out_dir / "eval.md").read_text()
    assert md.splitlines()[0] == f"| Dataset | Metric | {server} | {tiny_qwen3_path} |"
    assert "(+0.0000)" in md  # same model behind both: no difference

    from rerankctl.store import RunStore

    store = RunStore.open()
    run = store.list_runs(kind="eval")[0]
    assert run.status == "completed"
    stored = {(e.model, e.metric) for e in store.evals(run_id=run.id)}
    assert (server, "map") in stored and (str(tiny_qwen3_path), "ndcg@10") in stored


def test_cli_two_endpoints_in_parallel_on_the_mock_task(server, serve_app, tmp_path, capsys):
    other = serve_app(_app(_by_length))
    code, out, err = run_cli(
        ["eval", "--endpoints", server, other, "--datasets", "MockRerankingTask", "--model-workers", "2",
         "--output", str(tmp_path / "r")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == f"| Dataset | Metric | {server} | {other} |"
    data = json.loads((tmp_path / "r" / "eval.json").read_text())
    scores = {r["model"]: r["main_score"] for r in data["results"]}
    assert scores[other] == pytest.approx(0.75)  # the length scorer's hand-computed MAP (see test_eval_mteb)
    base = scores[server]
    assert lines[2] == f"| MockRerankingTask | map_at_1000 | {base:.4f} | 0.7500 ({0.75 - base:+.4f}) |"
    assert {r["model"] for r in data["results"]} == {server, other}


@pytest.mark.parametrize(
    ("kind", "handler", "expect"),
    [
        ("500s", lambda body: (500, {"message": "boom"}), "HTTP 500"),
        ("wrong shape", lambda body: (200, {"scores": [0.1]}), "no 'results' list"),
    ],
)
def test_bad_endpoints_end_with_a_message_naming_them(kind, handler, expect, serve_app, tmp_path, capsys):
    url = serve_app(_app(handler))
    code, out, err = run_cli(
        ["eval", "--endpoints", url, "--datasets", "MockRerankingTask", "--output", str(tmp_path)], capsys
    )
    assert code == 1, (kind, err)
    assert url in err and expect in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_refused_endpoint_is_named(tmp_path, capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    code, out, err = run_cli(["eval", "--endpoints", url, "--datasets", "MockRerankingTask"], capsys)
    assert code == 1 and url in err and "ConnectError" in err, err


def test_results_scored_before_a_failure_are_kept_and_the_rerun_resumes(serve_app, tmp_path, capsys):
    state = {"requests": 0, "fail_after": 3, "queries": []}

    def flaky(body):
        state["requests"] += 1
        state["queries"].append(body["query"])
        if state["fail_after"] is not None and state["requests"] > state["fail_after"]:
            return 500, {"message": "out of memory"}
        return _by_length(body)

    url = serve_app(_app(flaky))
    # 1 connection test + 2 queries of MockRerankingTask succeed; MockInstructionReranking then fails.
    args = ["eval", "--endpoints", url, "--datasets", "MockRerankingTask", "MockInstructionReranking",
            "--output", str(tmp_path / "r"), "--batch-size", "8"]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 1 and url in err and "out of memory" in err and "1 task result(s)" in err, err
    report = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert [r["dataset"] for r in report["results"]] == ["MockRerankingTask"]
    assert report["results"][0]["main_score"] == pytest.approx(0.75)
    assert url in report["meta"]["errors"]

    from rerankctl.store import RunStore

    store = RunStore.open()
    failed = store.list_runs(kind="eval")[0]
    assert failed.status == "failed"
    assert {e.dataset for e in store.evals(run_id=failed.id)} == {"MockRerankingTask"}

    # The server recovers; the rerun asks only for what the score cache lacks.
    state.update(fail_after=None, queries=[])
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    mock_queries = {"This is a test sentence", "This is another test sentence"}
    assert not mock_queries & set(state["queries"])  # served from the cache
    assert len(state["queries"]) >= 2  # the instruction task's queries were sent


def test_usage_errors_exit_2(tmp_path, capsys):
    code, _, err = run_cli(["eval", "--endpoints", "not-a-url"], capsys)
    assert code == 2 and "not-a-url" in err
    code, _, err = run_cli(["eval", "--endpoints", "http://x", "--two-stage"], capsys)
    assert code == 2 and "--embedding-endpoint" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["a"], "neg": ["b"]}\n{"query": "q", "pos": [3], "neg": []}\n')
    code, _, err = run_cli(["eval", "--endpoints", "http://127.0.0.1:9", "--input", str(bad)], capsys)
    assert code == 2 and "bad.jsonl:2" in err and "pos[0]" in err, err


def test_parallel_endpoints_run_in_children_whose_score_cache_persists(serve_app, tmp_path, capsys):
    """Two endpoints, --model-workers 2: each is scored in a forked child that writes the score cache."""
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def counting(name):
        def handler(body):
            seen[name].append(len(body["documents"]))
            return _by_length(body)

        return handler

    urls = [serve_app(_app(counting("a"))), serve_app(_app(counting("b")))]
    args = ["eval", "--endpoints", *urls, "--datasets", "MockRerankingTask", "--model-workers", "2",
            "--output", str(tmp_path / "r")]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    # A one-document connection test, then the mock task's two queries of two candidates each.
    assert sorted(seen["a"]) == sorted(seen["b"]) == [1, 2, 2], seen
    first = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert [r["main_score"] for r in first["results"]] == [pytest.approx(0.75)] * 2

    before = {k: len(v) for k, v in seen.items()}
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    # The children's cache writes reached the shared cache file: the rerun sends no documents again
    # (at most the connection test, which is not cached).
    assert all(len(seen[k]) - before[k] <= 1 for k in seen), seen
