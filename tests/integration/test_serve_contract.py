"""The server's contract over real loopback HTTP: TEI replies, what the OpenAPI schema says
(required fields, auth only with a key), offline /docs, bad text as 400 naming the field, a
hypothesis fuzz that no body gives a 5xx, and schemathesis against the live server (slow)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerankctl.errors import UsageError
from rerankctl.serve.app import RERANK_PATHS, ServeSettings, create_app
from rerankctl.serve.runner import BackgroundServer

KEY = "contract-key"
LIMITS = dict(max_docs=8, max_doc_chars=300, max_query_chars=100, max_body_bytes=100_000, max_wait_ms=1)


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    return Qwen3Reranker(str(tiny_qwen3_path), device="cpu", max_length=128)


@pytest.fixture(scope="module")
def open_server(reranker):
    with BackgroundServer(create_app(reranker, ServeSettings(**LIMITS))) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed_server(reranker):
    with BackgroundServer(create_app(reranker, ServeSettings(api_key=KEY, **LIMITS))) as srv:
        yield srv


class TEIClient:
    """Parses replies the way text-embeddings-inference's clients do: ``/rerank`` answers a bare
    JSON list of ``{"index", "score", "text"?}``, best first."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rerank(
        self, query: str, texts: list[str], return_text: bool = False
    ) -> list[tuple[int, float, str | None]]:
        reply = httpx.post(
            self.url + "/rerank",
            json={
                "query": query,
                "texts": texts,
                "raw_scores": False,
                "return_text": return_text,
                "truncate": True,
            },
        )
        reply.raise_for_status()
        body = reply.json()
        assert isinstance(body, list)
        return [(int(r["index"]), float(r["score"]), r.get("text")) for r in body]


def test_tei_client_reranks_through_rerankctl_serve(open_server, reranker):
    texts = ["a red wooden chair", "blue table", "chairs and stools", "nothing"]
    got = TEIClient(open_server.url).rerank("red chair", texts, return_text=True)
    expected = reranker.score_pairs(["red chair"] * 4, texts)
    assert [i for i, _, _ in got] == sorted(range(4), key=lambda i: -expected[i])
    for index, score, text in got:
        assert score == pytest.approx(expected[index], abs=1e-5) and text == texts[index]
    plain = TEIClient(open_server.url).rerank("red chair", texts)
    assert all(text is None for _, _, text in plain)
    assert set(httpx.post(open_server.url + "/rerank", json={"query": "q", "texts": ["a"]}).json()[0]) == {
        "index",
        "score",
    }
    # The Cohere shape is unchanged for `documents`.
    cohere = httpx.post(open_server.url + "/rerank", json={"query": "q", "documents": ["a"]}).json()
    assert cohere["results"][0]["index"] == 0 and "relevance_score" in cohere["results"][0]
    refused = httpx.post(open_server.url + "/rerank", json={"query": "q", "texts": ["a"], "raw_scores": True})
    assert refused.status_code == 422 and "raw_scores" in refused.json()["message"]


@pytest.mark.parametrize("path", [*RERANK_PATHS, "/tokenize"])
@pytest.mark.parametrize(
    "body, field",
    [
        ('{"query": "q\\ud800", "documents": ["a"]}', "query"),
        ('{"query": "q", "documents": ["a", "b\\udfff c"]}', "documents.1"),
        ('{"query": "q", "documents": [{"text": "\\ud83d"}]}', "documents.0.text"),
        ('{"query": "q", "texts": ["ok", "nul\\u0000here"]}', "texts.1"),
        ('{"query": "q", "documents": ["a"], "instruction": "\\ud800"}', "instruction"),
    ],
)
def test_text_the_tokenizer_cannot_take_is_a_400_naming_the_field(open_server, path, body, field):
    reply = httpx.post(open_server.url + path, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["message"].startswith(f"field '{field}': ")


def test_deep_json_and_bad_utf8_are_400(open_server):
    deep = '{"query": "q", "documents": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for body in (deep.encode(), b'{"query": "\xff\xfe", "documents": ["a"]}'):
        reply = httpx.post(open_server.url + "/v1/rerank", content=body)
        assert reply.status_code in (400, 413), reply.text


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_any_text = st.text(st.characters(codec=None, categories=None), max_size=30)  # surrogates, NUL, ...
_bodies = st.one_of(
    _json.map(json.dumps),
    st.fixed_dictionaries(
        {"query": _any_text | _json},
        optional={
            "documents": st.lists(_any_text | st.fixed_dictionaries({"text": _any_text}) | _json, max_size=5)
            | _json,
            "texts": st.lists(_any_text, max_size=5) | _json,
            "top_n": _json,
            "instruction": _any_text | _json,
            "return_documents": _json,
            "raw_scores": _json,
        },
    ).map(json.dumps),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, path=st.sampled_from([*RERANK_PATHS, "/tokenize"]))
def test_no_request_body_gives_a_5xx(open_server, body, path):
    """Issue 18.5: whatever the body (lone surrogates, NUL, wrong types, junk bytes), never a 5xx."""
    reply = httpx.post(open_server.url + path, content=body.encode("utf-8", "surrogatepass"))
    assert reply.status_code < 500, (body, reply.text)
    if reply.status_code >= 400:
        assert set(reply.json()) == {"message", "type", "code"}


def test_openapi_says_what_is_required_and_declares_auth_only_with_a_key(open_server, keyed_server):
    schema = httpx.get(open_server.url + "/openapi.json").json()
    request = schema["components"]["schemas"]["RerankRequest"]
    assert request["required"] == ["query"]
    assert {frozenset(alt["required"]) for alt in request["oneOf"]} == {
        frozenset({"documents"}),
        frozenset({"texts"}),
    }
    assert request["properties"]["documents"]["minItems"] == 1
    assert request["properties"]["documents"]["maxItems"] == LIMITS["max_docs"]
    assert request["properties"]["query"]["maxLength"] == LIMITS["max_query_chars"]
    assert "securitySchemes" not in schema.get("components", {})
    assert all("401" not in op["responses"] for path in schema["paths"].values() for op in path.values())

    keyed = httpx.get(keyed_server.url + "/openapi.json").json()  # open even with a key
    assert "HTTPBearer" in keyed["components"]["securitySchemes"]
    for path in ("/metrics", "/v1/models", "/v1/rerank", "/tokenize"):
        op = next(iter(keyed["paths"][path].values()))
        assert "401" in op["responses"] and op["security"] == [{"HTTPBearer": []}], path
    assert "security" not in keyed["paths"]["/health"]["get"]
    for path in ("/metrics", "/v1/models"):
        assert httpx.get(keyed_server.url + path).status_code == 401
        assert (
            httpx.get(keyed_server.url + path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        )
    assert httpx.get(keyed_server.url + "/docs").status_code == 200


def test_docs_work_offline(open_server):
    page = httpx.get(open_server.url + "/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        reply = httpx.get(open_server.url + asset)
        assert reply.status_code == 200 and len(reply.content) > 10_000, asset


def test_max_queue_docs_below_max_docs_is_an_error(reranker):
    with pytest.raises(UsageError, match="--max-queue-docs 5 is lower than --max-docs 8"):
        create_app(reranker, ServeSettings(max_docs=8, max_queue_docs=5))


@pytest.mark.slow
@pytest.mark.parametrize("keyed", [False, True])
def test_schemathesis_finds_no_failure(open_server, keyed_server, keyed, tmp_path):
    """schemathesis (every check, bounded) against the live server: 0 server errors, 0 violations."""
    st_bin = shutil.which("st") or str(Path(sys.executable).parent / "st")
    if not Path(st_bin).exists():
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    srv = keyed_server if keyed else open_server
    auth = ["-H", f"Authorization: Bearer {KEY}"] if keyed else []
    config = Path(__file__).with_name("schemathesis.toml")
    result = subprocess.run(
        [st_bin, "--config-file", str(config), "run", srv.url + "/openapi.json", "--checks", "all",
         "--max-examples", "25", "--seed", "17", "--no-color", *auth],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    tail = result.stdout[-3000:]
    assert result.returncode == 0, tail
    assert "No issues found" in tail or "passed" in tail, tail


def test_serve_cli_refuses_max_queue_docs_below_max_docs(tmp_path, capsys):
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", "--model", str(tmp_path), "--max-docs", "10", "--max-queue-docs", "5"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--max-queue-docs 5" in err and "--max-docs 10" in err
