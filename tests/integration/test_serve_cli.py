"""`rerankctl serve` as a real child process: kill and restart mid-run, port clashes, clear start-up errors."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest

from rerankctl.serve.backends import NoOpBackend
from rerankctl.serve.client import APIReranker, call_rerank_batch
from rerankctl.serve.runner import ServerProcess, bind_socket


def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rerankctl", "serve", *args], capture_output=True, text=True, timeout=timeout
    )


def _killer(server: ServerProcess, client: APIReranker, after_docs: int, restart_args: list[str], box: dict):
    """Wait until the client has ``after_docs`` scores, SIGKILL the server, start it again on the same port."""
    deadline = time.monotonic() + 60
    while client.stats["documents"] < after_docs and time.monotonic() < deadline:
        time.sleep(0.005)
    box["killed_at_docs"] = client.stats["documents"]
    server.stop(kill=True)
    time.sleep(0.3)  # the client now meets refused connections and retries
    box["second"] = ServerProcess([*restart_args, "--port", str(server.port)]).start()


def _kill_restart_run(tmp_path, args: list[str], items, expected, batch_size: int):
    first = ServerProcess(args).start()
    client = APIReranker(
        first.url,
        batch_size=batch_size,
        max_concurrency=4,
        retries=10,
        backoff_base=0.1,
        backoff_max=2.0,
        timeout=30,
        cache_dir=str(tmp_path),
    )
    total = sum(len(docs) for _, docs in items)
    box: dict = {}
    killer = threading.Thread(target=_killer, args=(first, client, total // 4, args, box))
    killer.start()
    try:
        results = call_rerank_batch(items, client, show_progress=False)
        killer.join(120)
        second = box["second"]
        metrics = httpx.get(second.url + "/metrics").text
    finally:
        killer.join(120)
        first.stop(kill=True)
        if "second" in box:
            box["second"].stop(kill=True)
    assert second.port == first.port
    assert total // 4 <= box["killed_at_docs"] < total  # killed mid-run
    assert client.stats["retries"] >= 1
    answered_by_second = next(
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("rerankctl_documents_total ")
    )
    assert answered_by_second > 0  # the restarted server finished the run
    for (_, docs), (ranking, scores), want in zip(items, results, expected):
        assert scores == pytest.approx(want, abs=1e-5)
        assert sorted(ranking) == list(range(len(docs)))


def test_client_survives_a_killed_and_restarted_server(tmp_path):
    items = [(f"query {i}", [f"doc {i}.{j} " + "word " * (j % 7) for j in range(20)]) for i in range(40)]
    expected = [[NoOpBackend.expected_score(q, d) for d in docs] for q, docs in items]
    _kill_restart_run(
        tmp_path,
        ["--model", "noop-model", "--backend", "noop", "--log-level", "warning"],
        items,
        expected,
        batch_size=5,
    )


@pytest.mark.slow
def test_client_survives_a_killed_and_restarted_model_server(tmp_path, tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    items = [(f"query {i}", [f"doc {i}.{j} " + "word " * (j % 7) for j in range(16)]) for i in range(30)]
    local = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=256)
    expected = [local.score_pairs([q] * len(docs), docs) for q, docs in items]
    _kill_restart_run(
        tmp_path,
        ["--model", str(tiny_qwen3_path), "--max-length", "256", "--log-level", "warning"],
        items,
        expected,
        batch_size=4,
    )


def test_port_in_use_is_a_clear_error():
    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        done = _run_cli("--model", "m", "--backend", "noop", "--port", str(port), timeout=60)
    finally:
        sock.close()
    assert done.returncode == 2
    assert f"error: port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_model_directory_and_backend_are_clear_errors(tmp_path, tiny_qwen3_path):
    done = _run_cli("--model", str(tmp_path / "nope"), "--port", "0", timeout=60)
    assert done.returncode == 2 and "no such model directory" in done.stderr
    done = _run_cli("--model", "m", "--backend", "tensorrt", "--port", "0", timeout=60)
    assert done.returncode == 2 and "unknown backend 'tensorrt'" in done.stderr
    done = _run_cli("--model", "m", "--backend", "noop", "--max-batch-tokens", "0", timeout=60)
    assert done.returncode == 2 and "--max-batch-tokens must be at least 1" in done.stderr


def test_vllm_backend_without_vllm_or_gpu_says_which(tiny_qwen3_path):
    from rerankctl.serve.vllm_backend import vllm_missing

    missing = vllm_missing()
    if not missing:
        pytest.skip("vLLM and a GPU are present here")
    done = _run_cli("--model", str(tiny_qwen3_path), "--backend", "vllm", "--port", "0")
    assert done.returncode == 1
    assert "--backend vllm cannot start: " + "; ".join(missing) in done.stderr
    assert "Traceback" not in done.stderr


def test_served_noop_cli_answers_with_api_key_from_env(tmp_path):
    server = ServerProcess(
        ["--model", "m", "--backend", "noop", "--served-model-name", "my-reranker"],
        env={"RERANKCTL_API_KEY": "s3cret"},
    ).start()
    try:
        assert httpx.post(server.url + "/rerank", json={"query": "q", "documents": ["a"]}).status_code == 401
        body = httpx.post(
            server.url + "/rerank",
            json={"query": "q", "documents": ["a"]},
            headers={"Authorization": "Bearer s3cret"},
        ).json()
        assert body["model"] == "my-reranker"
        assert body["results"] == [{"index": 0, "relevance_score": NoOpBackend.expected_score("q", "a")}]
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        code = server.stop()  # SIGTERM: graceful shutdown
    assert code in (0, -15)
