"""The client's pure parts: endpoint URLs, result mapping, backoff, the SQLite score cache."""

from __future__ import annotations

import sqlite3

import pytest

from rerankctl.errors import RerankctlError, UsageError
from rerankctl.serve.cache import ScoreCache, score_key
from rerankctl.serve.client import APIReranker, normalize_endpoint, parse_results


def test_normalize_endpoint():
    assert normalize_endpoint("http://127.0.0.1:9997") == "http://127.0.0.1:9997/v1/rerank"
    assert normalize_endpoint("http://127.0.0.1:9997/") == "http://127.0.0.1:9997/v1/rerank"
    assert normalize_endpoint(" https://h/v2/rerank ") == "https://h/v2/rerank"
    assert normalize_endpoint("http://h:1/rerank?x=1") == "http://h:1/rerank?x=1"
    for bad in ("localhost:9997", "ftp://h/rerank", "http://"):
        with pytest.raises(UsageError, match="not an http"):
            normalize_endpoint(bad)


def test_parse_results_maps_back_by_index():
    body = {"results": [{"index": 2, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]}
    assert parse_results("E", body, 3) == [0.1, None, 0.9]  # index 1 left out (top_n)
    tei = [{"index": 1, "score": 2.5}, {"index": 0, "score": -1}]  # TEI answers a bare list with "score"
    assert parse_results("E", tei, 2) == [-1.0, 2.5]
    for bad in (
        {"data": []},
        {"results": [{"index": 3, "relevance_score": 1}]},
        {"results": [{"index": 0, "relevance_score": "high"}]},
        {"results": [{"relevance_score": 1}]},
        {"results": [{"index": 0, "relevance_score": True}]},
    ):
        with pytest.raises(RerankctlError, match="^E"):
            parse_results("E", bad, 2)
    with pytest.raises(RerankctlError, match="twice"):
        parse_results("E", {"results": [{"index": 0, "relevance_score": 1}] * 2}, 2)


def test_backoff_is_exponential_jittered_capped_and_honours_retry_after():
    client = APIReranker("http://127.0.0.1:1", use_cache=False, backoff_base=0.5, backoff_max=4.0)
    for attempt, full in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 4.0)):
        delays = [client._delay(attempt, None) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 10  # jittered, so clients do not retry in lockstep
    assert client._delay(1, 3.0) == 3.0  # Retry-After wins when longer
    assert client._delay(1, 1e6) == 60.0  # but is capped


def test_client_rejects_bad_settings():
    for kwargs in ({"batch_size": 0}, {"max_concurrency": 0}, {"retries": -1}, {"timeout": 0}):
        with pytest.raises(UsageError):
            APIReranker("http://127.0.0.1:1", use_cache=False, **kwargs)


def test_score_cache_round_trip_and_keys(tmp_path):
    keys = [score_key("http://e/v1/rerank", None, None, "q", f"doc {i}") for i in range(1200)]
    assert len(set(keys)) == 1200
    # Every part of the key matters.
    base = ("http://e/v1/rerank", "m", "i", "q", "d")
    variants = {score_key(*base)}
    for pos, other in enumerate(("http://f/v1/rerank", "m2", "j", "q2", "d2")):
        parts = list(base)
        parts[pos] = other
        variants.add(score_key(*parts))
    assert len(variants) == 6
    cache = ScoreCache(tmp_path)
    cache.put_many((k, i / 10) for i, k in enumerate(keys))
    assert len(cache) == 1200
    got = cache.get_many(keys[::-1] + ["missing"])  # more keys than one SELECT takes
    assert got == {k: i / 10 for i, k in enumerate(keys)}
    cache.close()
    # Persisted on disk in WAL mode: a new connection sees it.
    db = sqlite3.connect(str(tmp_path / "scores.sqlite"))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT score FROM scores WHERE key = ?", (keys[7],)).fetchone()[0] == pytest.approx(
        0.7
    )


def test_cache_default_location_follows_rerankctl_home(rerankctl_home):
    client = APIReranker("http://127.0.0.1:1")
    assert client._cache.path == rerankctl_home / "cache" / "scores" / "scores.sqlite"
    client.close()
