"""Every converter on a hand-written sample in its source shape, and convert_file's reporting."""

from __future__ import annotations

import json

import pytest

from rerankctl.data.converters import CONVERTERS, convert_file, get_converter
from rerankctl.data.formats import RecordError, parse_preference, parse_rerank
from rerankctl.errors import DataError, UsageError


def conv(name, obj):
    return get_converter(name).convert(obj)


def test_registry_names_and_aliases():
    assert set(CONVERTERS) == {
        "seed",
        "flagembedding",
        "ms-swift",
        "sentence-transformers",
        "msmarco",
        "hh-rlhf",
        "stack-exchange-paired",
        "rm-static",
        "helpsteer3",
        "ultrafeedback",
    }
    assert get_converter("full-hh-rlhf") is CONVERTERS["rm-static"]
    assert get_converter("Sentence_Transformers") is CONVERTERS["sentence-transformers"]
    with pytest.raises(UsageError, match="unknown source format"):
        get_converter("nope")


def test_flagembedding_prompt_becomes_instruction_and_scores_survive():
    src = {
        "query": "what is python",
        "pos": ["Python is a language."],
        "neg": ["A python is a snake.", "Pythons live in Asia."],
        "pos_scores": [0.95],
        "neg_scores": [0.6, 0.1],
        "prompt": "Given a query, retrieve passages about programming",
        "type": "normal",
    }
    (out,) = conv("flagembedding", src)
    rec = parse_rerank(out)
    assert rec.instruction == "Given a query, retrieve passages about programming"
    assert rec.docs == ["Python is a language.", "A python is a snake.", "Pythons live in Asia."]
    assert rec.labels == [1.0, 0.0, 0.0] and rec.teacher_scores == [0.95, 0.6, 0.1]


def test_ms_swift_messages_shape():
    src = {
        "messages": [
            {"role": "system", "content": "Judge product relevance"},
            {"role": "user", "content": "red chair"},
        ],
        "positive_messages": [[{"role": "assistant", "content": "A red chair."}]],
        "negative_messages": [
            [{"role": "assistant", "content": "A blue table."}],
            [{"role": "assistant", "content": "A green lamp."}],
        ],
    }
    assert conv("ms-swift", src) == [
        {
            "query": "red chair",
            "pos": ["A red chair."],
            "neg": ["A blue table.", "A green lamp."],
            "instruction": "Judge product relevance",
        }
    ]
    old = {"query": "q", "response": "good doc", "rejected_response": ["bad doc"]}
    assert conv("ms-swift", old) == [{"query": "q", "pos": ["good doc"], "neg": ["bad doc"]}]
    with pytest.raises(RecordError) as info:
        conv("ms-swift", {**src, "negative_messages": [[{"role": "assistant", "content": ""}]]})
    assert info.value.field == "negative_messages[0][0].content"


def test_sentence_transformers_numbered_negatives_in_order():
    src = {
        "anchor": "q",
        "positive": "p",
        "negative_2": "n2",
        "negative_1": "n1",
        "negative_10": "n10",
        "negative_3": None,
    }
    assert conv("sentence-transformers", src) == [{"query": "q", "pos": ["p"], "neg": ["n1", "n2", "n10"]}]
    assert conv("sentence-transformers", {"query": "q", "positive": "p", "negative": "n"}) == [
        {"query": "q", "pos": ["p"], "neg": ["n"]}
    ]
    with pytest.raises(RecordError) as info:
        conv("sentence-transformers", {"anchor": "q", "positive": "p", "negative_1": 5})
    assert info.value.field == "negative_1"


def test_msmarco_triples_file(tmp_path):
    path = tmp_path / "triples.tsv"
    path.write_text(
        "what is rba\tThe RBA is a bank.\tRBAs are rare.\nbad line only two\tcolumns\n", encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    report = convert_file(path, "msmarco", out, skip_invalid=True)
    assert (report.rows, report.written, report.invalid) == (2, 1, 1)
    assert report.errors[0].line == 2 and "3 tab-separated columns" in report.errors[0].message
    assert json.loads(out.read_text()) == {
        "query": "what is rba",
        "pos": ["The RBA is a bank."],
        "neg": ["RBAs are rare."],
    }


HH_CHOSEN = (
    "\n\nHuman: What are some cuss words in english?\n\nAssistant: Here's an incomplete list.\n\n"
    "Human: What's your favorite one?\n\nAssistant: I haven't even thought about it."
)
HH_REJECTED = (
    "\n\nHuman: What are some cuss words in english?\n\nAssistant: Here's an incomplete list.\n\n"
    "Human: What's your favorite one?\n\nAssistant: Ass."
)


def test_hh_rlhf_transcripts_become_messages_with_shared_prompt():
    (out,) = conv("hh-rlhf", {"chosen": HH_CHOSEN, "rejected": HH_REJECTED})
    assert out["prompt"] == [
        {"role": "user", "content": "What are some cuss words in english?"},
        {"role": "assistant", "content": "Here's an incomplete list."},
        {"role": "user", "content": "What's your favorite one?"},
    ]
    assert out["chosen"] == [{"role": "assistant", "content": "I haven't even thought about it."}]
    assert out["rejected"] == [{"role": "assistant", "content": "Ass."}]
    assert parse_preference(out).prompt == out["prompt"]


@pytest.mark.parametrize(
    ("chosen", "rejected", "field"),
    [
        ("no markers at all", HH_REJECTED, "chosen"),
        (HH_CHOSEN, HH_CHOSEN, "rejected"),
        (HH_CHOSEN + "\n\nHuman: more?", HH_REJECTED, "chosen"),
        (HH_CHOSEN, "\n\nHuman: hi\n\nAssistant:", "rejected"),
        (HH_CHOSEN, 42, "rejected"),
    ],
)
def test_hh_rlhf_bad_transcripts(chosen, rejected, field):
    with pytest.raises(RecordError) as info:
        conv("hh-rlhf", {"chosen": chosen, "rejected": rejected})
    assert info.value.field == field


def test_stack_exchange_paired_prefers_response_j():
    src = {
        "qid": 1,
        "question": "How do I exit vim?",
        "date": "2020",
        "response_j": ":q",
        "response_k": "reboot",
    }
    assert conv("stack-exchange-paired", src) == [
        {
            "prompt": [{"role": "user", "content": "How do I exit vim?"}],
            "chosen": [{"role": "assistant", "content": ":q"}],
            "rejected": [{"role": "assistant", "content": "reboot"}],
        }
    ]


def test_rm_static_prompt_transcript_ending_with_assistant():
    src = {
        "prompt": "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant:",
        "response": " Why did...",
        "chosen": " Why did the chicken cross the road?",
        "rejected": " No.",
    }
    (out,) = conv("rm-static", src)
    assert out["prompt"] == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    assert out["chosen"] == [{"role": "assistant", "content": "Why did the chicken cross the road?"}]
    assert out["rejected"] == [{"role": "assistant", "content": "No."}]


@pytest.mark.parametrize(
    ("strength", "chosen", "margin"), [(-3, "first", 3.0), (-1, "first", 1.0), (2, "second", 2.0)]
)
def test_helpsteer3_preference_strength_picks_the_side_and_margin(strength, chosen, margin):
    src = {
        "domain": "general",
        "language": "english",
        "context": [{"role": "user", "content": "Say something"}],
        "response1": "first",
        "response2": "second",
        "overall_preference": strength,
    }
    (out,) = conv("helpsteer3", src)
    assert out["chosen"] == [{"role": "assistant", "content": chosen}]
    assert out["rejected"][0]["content"] == ("second" if chosen == "first" else "first")
    assert out["margin"] == margin
    assert out["prompt"] == [{"role": "user", "content": "Say something"}]


def test_helpsteer3_tie_yields_nothing_and_bad_strength_is_an_error():
    src = {
        "context": [{"role": "user", "content": "x"}],
        "response1": "a",
        "response2": "b",
        "overall_preference": 0,
    }
    assert conv("helpsteer3", src) == []
    with pytest.raises(RecordError) as info:
        conv("helpsteer3", {**src, "overall_preference": 5})
    assert info.value.field == "overall_preference"


def test_ultrafeedback_binarized():
    user = {"role": "user", "content": "Write a haiku"}
    src = {
        "prompt": "Write a haiku",
        "prompt_id": "abc",
        "chosen": [user, {"role": "assistant", "content": "Autumn moonlight"}],
        "rejected": [user, {"role": "assistant", "content": "I cannot"}],
        "messages": [user, {"role": "assistant", "content": "Autumn moonlight"}],
        "score_chosen": 8.5,
        "score_rejected": 3.0,
    }
    (out,) = conv("ultrafeedback", src)
    assert out == {
        "prompt": [user],
        "chosen": [{"role": "assistant", "content": "Autumn moonlight"}],
        "rejected": [{"role": "assistant", "content": "I cannot"}],
        "margin": 5.5,
    }
    assert conv("ultrafeedback", {**src, "score_rejected": 8.5}) == []


def test_convert_file_reports_lines_counts_ties_and_writes_atomically(tmp_path):
    path = tmp_path / "hs3.jsonl"
    ok = {
        "context": [{"role": "user", "content": "x"}],
        "response1": "a",
        "response2": "b",
        "overall_preference": 1,
    }
    rows = [ok, {**ok, "overall_preference": 0}, {**ok, "response1": ""}, "not an object"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError) as info:
        convert_file(path, "helpsteer3", out)
    assert info.value.line == 3 and info.value.field == "response1"
    assert not out.exists() and list(tmp_path.iterdir()) == [path]
    report = convert_file(path, "helpsteer3", out, skip_invalid=True)
    assert (report.rows, report.written, report.dropped, report.invalid) == (5, 1, 1, 3)
    assert [e.line for e in report.errors] == [3, 4, 5]
    assert json.loads(out.read_text())["chosen"] == [{"role": "assistant", "content": "b"}]


def test_convert_file_with_nothing_convertible_writes_nothing(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"foo": 1}) + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match="no record could be converted"):
        convert_file(path, "flagembedding", out, skip_invalid=True)
    assert not out.exists()
