"""Request shapes, response building, error messages, and the Prometheus text the server writes."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from rerankctl.serve.metrics import ServerMetrics
from rerankctl.serve.schemas import RerankRequest, build_response, describe_validation_error


@pytest.mark.parametrize(
    ("payload", "docs", "limit", "with_docs"),
    [
        (
            {"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"], "top_n": 1},
            ["a", "b"],
            1,
            False,
        ),  # Cohere
        (
            {"query": "q", "documents": [{"text": "a"}, {"text": "b", "id": 7}], "return_documents": True},
            ["a", "b"],
            None,
            True,
        ),  # Jina / Cohere v1 objects
        (
            {"query": "q", "texts": ["a", "b"], "return_text": True, "raw_scores": False},
            ["a", "b"],
            None,
            True,
        ),  # TEI
        ({"query": "q", "documents": ["a"], "top_k": 5}, ["a"], 5, False),  # top_k synonym
    ],
)
def test_request_shapes(payload, docs, limit, with_docs):
    req = RerankRequest.model_validate(payload)
    assert req.document_texts() == docs
    assert req.limit() == limit
    assert req.wants_documents() is with_docs


def test_validation_messages_name_the_field():
    with pytest.raises(ValidationError) as info:
        RerankRequest.model_validate({"query": "q", "documents": ["a", 5, {"image": "x"}]})
    message = describe_validation_error(info.value)
    assert message == (
        "field 'documents.1': must be a string or an object with a 'text' string; "
        "field 'documents.2': must be a string or an object with a 'text' string"
    )
    with pytest.raises(ValidationError) as info:
        RerankRequest.model_validate({"query": "q"})
    assert describe_validation_error(info.value) == "give the documents to rank in 'documents' (or 'texts')"


def test_build_response_sorts_cuts_and_counts():
    body = build_response("id1", "m", ["a", "b", "c", "d"], [0.1, 0.9, 0.5, 0.9], [10, 11, 12, 13], 3, True)
    # Ties keep request order: index 1 before index 3.
    assert [r["index"] for r in body["results"]] == [1, 3, 2]
    assert body["results"][0] == {"index": 1, "relevance_score": 0.9, "document": {"text": "b"}}
    assert body["usage"] == {"prompt_tokens": 46, "total_tokens": 46}
    assert body["meta"] == {"tokens": {"input_tokens": 46, "output_tokens": 0}}
    plain = build_response("id2", "m", ["a"], [0.3], [5], None, False)
    assert plain["results"] == [{"index": 0, "relevance_score": 0.3}]


LINE = re.compile(r'^([a-z_]+)(\{([a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*)\})? (-?[0-9.e+]+|\+Inf)$')


def test_metrics_text_is_valid_prometheus_exposition():
    m = ServerMetrics()
    for seconds in (0.003, 0.02, 0.02, 0.7, 45.0):
        m.request_started()
        m.request_finished("/rerank", 200, seconds)
    m.request_started()
    m.request_finished("/rerank", 422, 0.001)
    for pairs in (1, 30, 30, 200):
        m.observe_batch(pairs)
    m.observe_documents(50, 7000)
    text = m.render({"rerankctl_queue_documents": ("Queued documents.", 3)})
    samples = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP"):
            continue
        match = LINE.match(line)
        assert match, f"not exposition format: {line!r}"
        samples[line.rsplit(" ", 1)[0]] = float(match.group(5).replace("+Inf", "inf"))
    assert samples['rerankctl_requests_total{route="/rerank",status="200"}'] == 5
    assert samples['rerankctl_requests_total{route="/rerank",status="422"}'] == 1
    # Cumulative buckets: <=0.005 holds 0.003 and 0.001; <=0.025 adds the two 0.02; 45 s only in +Inf.
    assert samples['rerankctl_request_duration_seconds_bucket{le="0.005",route="/rerank"}'] == 2
    assert samples['rerankctl_request_duration_seconds_bucket{le="0.025",route="/rerank"}'] == 4
    assert samples['rerankctl_request_duration_seconds_bucket{le="30",route="/rerank"}'] == 5
    assert samples['rerankctl_request_duration_seconds_bucket{le="+Inf",route="/rerank"}'] == 6
    assert samples['rerankctl_request_duration_seconds_count{route="/rerank"}'] == 6
    assert samples['rerankctl_request_duration_seconds_sum{route="/rerank"}'] == pytest.approx(45.744)
    assert samples['rerankctl_batch_pairs_bucket{le="32"}'] == 3
    assert samples["rerankctl_batch_pairs_sum"] == 261
    assert samples["rerankctl_documents_total"] == 50 and samples["rerankctl_prompt_tokens_total"] == 7000
    assert samples["rerankctl_documents_per_second"] == 5.0  # 50 documents over the 10 s window
    assert samples["rerankctl_requests_in_flight"] == 0 and samples["rerankctl_queue_documents"] == 3
    assert {
        "rerankctl_requests_total",
        "rerankctl_request_duration_seconds",
        "rerankctl_batch_pairs",
    } <= typed
