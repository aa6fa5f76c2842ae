"""`--processor FILE:CLASS`: a user's file and class turn any record shape into rerankctl's formats.

Every reader goes through it (validate, stats, convert, split, sample, RerankDataset, the streaming
reader, preference and VL loading), so these tests feed one custom shape through each and check the
records that come out, the drop counts and the errors (file, line, the processor's own message).
"""

from __future__ import annotations

import json
import pickle
import textwrap

import pytest
from cli_helpers import main_exit as _main

PROC = textwrap.dedent(
    """
    class QA:
        '''{"question", "good": [...], "bad_answers": [...]} -> rerank; "skip" drops the record.'''

        def __call__(self, record):
            if record.get("skip"):
                return None
            if record.get("boom"):
                raise ValueError("no answers for " + record["question"])
            if record.get("wrong"):
                return "oops"
            return {"query": record["question"], "pos": record["good"], "neg": record.get("bad_answers", [])}


    class Pairs:
        def process(self, record):
            return {"prompt": record["q"], "chosen": record["better"], "rejected": record["worse"]}


    def upper(record):
        return {"query": record["question"].upper(), "pos": record["good"]}


    class NeedsArgs:
        def __init__(self, path):
            self.path = path


    NOT_CALLABLE = 3
    """
)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def proc(tmp_path):
    path = tmp_path / "my_proc.py"
    path.write_text(PROC)
    return path


@pytest.fixture
def raw(tmp_path):
    return _write(
        tmp_path / "raw.jsonl",
        [
            {"question": "q1", "good": ["a"], "bad_answers": ["b", "c"]},
            {"question": "q2", "good": ["d"], "skip": True},
            {"question": "q3", "good": ["e", "e2"], "bad_answers": ["f"]},
        ],
    )


# ---------------------------------------------------------------------------------------------- loading


def test_class_function_and_process_method_all_load(proc):
    from rerankctl.data.processor import load_processor

    qa = load_processor(f"{proc}:QA")
    assert qa.apply({"question": "q", "good": ["x"]}) == ({"query": "q", "pos": ["x"], "neg": []}, None)
    assert qa.apply({"question": "q", "skip": True}) == (None, None)  # dropped, not an error
    pairs = load_processor(f"{proc}:Pairs")
    assert pairs.apply({"q": "p", "better": "b", "worse": "w"})[0] == {
        "prompt": "p",
        "chosen": "b",
        "rejected": "w",
    }
    assert load_processor(f"{proc}:upper").apply({"question": "q", "good": ["x"]})[0]["query"] == "Q"
    assert load_processor(f"{proc}:QA") is qa  # loaded once per file version
    assert pickle.loads(pickle.dumps(qa)).spec == qa.spec  # a DataLoader worker loads it again by spec


def test_record_errors_carry_the_processors_message(proc):
    from rerankctl.data.processor import load_processor

    qa = load_processor(f"{proc}:QA")
    obj, (message, hint) = qa.apply({"question": "q9", "boom": True})
    assert (
        obj is None
        and message == "processor QA raised ValueError: no answers for q9"
        and "own message" in hint
    )
    obj, (message, _hint) = qa.apply({"question": "q", "wrong": True})
    assert message == "processor QA returned str, expected a dict (the record) or None (drop it)"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{proc}", "not FILE:CLASS"),
        ("{proc}:", "not FILE:CLASS"),
        ("{dir}/nope.py:QA", "no such file"),
        ("{proc}:Missing", "has no 'Missing'"),
        ("{proc}:NeedsArgs", "NeedsArgs() failed: TypeError"),
        ("{proc}:NOT_CALLABLE", "neither callable nor has a process(record) method"),
    ],
)
def test_loading_errors_are_usage_errors(proc, spec, expected):
    from rerankctl.data.processor import load_processor
    from rerankctl.errors import UsageError

    with pytest.raises(UsageError) as exc:
        load_processor(spec.format(proc=proc, dir=proc.parent))
    assert expected in exc.value.message and exc.value.exit_code == 2


def test_missing_name_lists_what_the_file_defines(proc):
    from rerankctl.data.processor import load_processor
    from rerankctl.errors import UsageError

    with pytest.raises(UsageError) as exc:
        load_processor(f"{proc}:Missing")
    assert exc.value.hint == "names defined there: NeedsArgs, Pairs, QA, upper"  # classes and functions


def test_syntax_error_in_the_file_names_its_line(tmp_path):
    from rerankctl.data.processor import load_processor
    from rerankctl.errors import UsageError

    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\ndef broken(:\n")
    with pytest.raises(UsageError) as exc:
        load_processor(f"{bad}:broken")
    assert "importing bad.py failed (line 2): SyntaxError" in exc.value.message


# ---------------------------------------------------------------------------------------------- readers


def test_validate_reads_a_custom_shape_through_it(proc, raw):
    from rerankctl.data.validate import load_records, validate_file

    report = validate_file(raw, processor=f"{proc}:QA")
    assert (report.kind, report.total, report.valid, report.invalid, report.dropped) == ("rerank", 2, 2, 0, 1)
    records, _ = load_records(raw, processor=f"{proc}:QA")
    assert [(r.query, r.docs, r.labels) for r in records] == [
        ("q1", ["a", "b", "c"], [1.0, 0.0, 0.0]),
        ("q3", ["e", "e2", "f"], [1.0, 1.0, 0.0]),
    ]
    # Without the processor the same file is not rerankctl data at all.
    from rerankctl.errors import DataError

    with pytest.raises(DataError, match="--processor FILE:CLASS"):
        validate_file(raw)


def test_bad_records_name_file_line_and_the_processors_message(proc, tmp_path):
    from rerankctl.data.validate import load_records, validate_file
    from rerankctl.errors import DataError

    path = _write(
        tmp_path / "mixed.jsonl",
        [
            {"question": "q1", "good": ["a"]},
            {"question": "q2", "boom": True},
            {"question": "q3", "wrong": True},
            {"question": "q4", "good": []},  # the processor's output is bad rerank data
        ],
    )
    report = validate_file(path, processor=f"{proc}:QA")
    assert report.invalid == 3
    messages = [e.message for e in report.errors]
    assert messages[0] == f"{path}:2: processor QA raised ValueError: no answers for q2"
    assert messages[1].startswith(f"{path}:3: processor QA returned str")
    assert messages[2] == f"{path}:4: field 'pos': empty list (in the record processor QA returned)"
    with pytest.raises(DataError) as exc:
        load_records(path, processor=f"{proc}:QA")
    assert exc.value.line == 2 and "no answers for q2" in exc.value.message
    records, skipped = load_records(path, processor=f"{proc}:QA", skip_invalid=True)
    assert len(records) == 1 and skipped == 3


def test_a_processor_that_drops_everything_says_so(proc, tmp_path):
    from rerankctl.data.validate import validate_file
    from rerankctl.errors import DataError

    path = _write(tmp_path / "all.jsonl", [{"question": "q", "skip": True}] * 3)
    with pytest.raises(DataError, match=r"the processor .*my_proc.py:QA dropped every record \(3\)"):
        validate_file(path, processor=f"{proc}:QA")


def test_data_commands_accept_processor(proc, raw, tmp_path, capsys):
    code, out, _ = _main(["data", "validate", str(raw), "--processor", f"{proc}:QA"], capsys)
    assert code == 0 and "rerank, 2 records, 2 valid, 0 invalid, 1 dropped by the processor" in out

    code, out, _ = _main(["data", "stats", str(raw), "--processor", f"{proc}:QA", "--json"], capsys)
    stats = json.loads(out)
    assert code == 0 and stats["records"] == 2 and stats["kind"] == "rerank"

    converted = tmp_path / "conv.jsonl"
    code, out, _ = _main(
        ["data", "convert", str(raw), "--processor", f"{proc}:QA", "-o", str(converted)], capsys
    )
    assert code == 0 and "1 dropped by the processor" in out
    assert [json.loads(line) for line in converted.read_text().splitlines()] == [
        {"query": "q1", "pos": ["a"], "neg": ["b", "c"]},
        {"query": "q3", "pos": ["e", "e2"], "neg": ["f"]},
    ]

    train, test = tmp_path / "tr.jsonl", tmp_path / "te.jsonl"
    argv = ["data", "split", str(raw), "--processor", f"{proc}:QA", "--train-output", str(train)]
    code, _, _ = _main([*argv, "--test-output", str(test), "--test-frac", "0.5"], capsys)
    rows = [json.loads(line) for p in (train, test) for line in p.read_text().splitlines()]
    assert code == 0 and sorted(r["query"] for r in rows) == ["q1", "q3"]  # the processed records

    sampled = tmp_path / "s.jsonl"
    code, _, _ = _main(
        ["data", "sample", str(raw), "--processor", f"{proc}:QA", "-n", "5", "-o", str(sampled)], capsys
    )
    assert code == 0 and len(sampled.read_text().splitlines()) == 2


def test_data_command_with_a_bad_processor_exits_2_with_one_line(raw, proc, capsys):
    code, _, err = _main(["data", "validate", str(raw), "--processor", f"{proc}:Nope"], capsys)
    assert code == 2 and "has no 'Nope'" in err and "Traceback" not in err
    code, out, err = _main(
        ["data", "validate", str(raw.parent / "boom.jsonl"), "--processor", f"{proc}:QA"], capsys
    )
    assert code == 2 and "no such file" in err


def test_rerank_dataset_and_streaming_read_through_it(proc, raw, tmp_path, rerankctl_home):
    from rerankctl.data.rerank_dataset import RerankDataset
    from rerankctl.data.streaming import StreamingRerankDataset

    data = RerankDataset(raw, n_docs=0, processor=f"{proc}:QA", cache_dir=str(tmp_path / "c"))
    assert len(data) == 2 and data.processor_dropped == 1
    assert data.record(1).docs == ["e", "e2", "f"]
    again = RerankDataset(raw, n_docs=0, processor=f"{proc}:QA", cache_dir=str(tmp_path / "c"))
    assert again.processor_dropped == 1  # the Arrow cache remembers the drops
    # Another processor is another cache entry, not the first one's rows.
    upper = RerankDataset(
        raw, n_docs=0, processor=f"{proc}:upper", cache_dir=str(tmp_path / "c"), skip_invalid=True
    )
    assert [upper.record(i).query for i in range(len(upper))] == ["Q1", "Q2", "Q3"]
    # In-memory records go through it too.
    listed = RerankDataset([{"question": "q", "good": ["x"]}], n_docs=0, processor=f"{proc}:QA")
    assert listed.record(0).docs == ["x"]

    stream = StreamingRerankDataset(raw, n_docs=0, processor=f"{proc}:QA", rank=0, world_size=1)
    assert [r.query for _, _, r in stream.iter_records()] == ["q1", "q3"] and stream.processor_dropped == 1


def test_preference_and_vl_loading_read_through_it(proc, tmp_path):
    from rerankctl.train.reward_data import load_preferences

    path = _write(tmp_path / "pref.jsonl", [{"q": "2+2?", "better": "4", "worse": "5"}])
    records, _ = load_preferences(str(path), processor=f"{proc}:Pairs")
    assert records[0].prompt == [{"role": "user", "content": "2+2?"}]
    assert records[0].chosen == [{"role": "assistant", "content": "4"}]


def test_vl_items_read_through_it(tmp_path):
    from PIL import Image

    from rerankctl.data.vl_dataset import load_vl_items

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    proc = tmp_path / "vl_proc.py"
    proc.write_text(
        "def vl(r):\n"
        "    return {'id': r['k'], 'query': r['ask'], 'image': r['img'], 'response': [r['good'], r['bad']],"
        " 'human_ranking': [0, 1]}\n"
    )
    path = _write(
        tmp_path / "vl.jsonl", [{"k": "1", "ask": "what?", "img": "a.png", "good": "cat", "bad": "dog"}]
    )
    items, skipped = load_vl_items(path, processor=f"{proc}:vl")
    assert len(items) == 1 and skipped == 0
    row = {"k": "2", "ask": "and?", "img": "a.png", "good": "x", "bad": "y"}
    two = _write(tmp_path / "vl2.jsonl", [json.loads(path.read_text()), row])
    assert len(load_vl_items(two, processor=f"{proc}:vl")[0]) == 2
    assert (
        len(load_vl_items(two, processor=f"{proc}:vl", max_records=1)[0]) == 1
    )  # train vl-reward --max-samples


def test_config_field_is_declared_once_and_made_absolute(proc, tmp_path, monkeypatch):
    from pydantic import ValidationError

    from rerankctl.config.reward import RewardConfig
    from rerankctl.config.rl import RLConfig
    from rerankctl.config.sft import SFTConfig
    from rerankctl.config.vl_reward import VLRewardConfig

    monkeypatch.chdir(proc.parent)
    data_key = {SFTConfig: "data", RLConfig: "data", RewardConfig: "dataset", VLRewardConfig: "train_data"}
    for model, key in data_key.items():
        assert model(processor="my_proc.py:QA", **{key: "raw.jsonl"}).processor == f"{proc.resolve()}:QA"
        with pytest.raises(ValidationError, match="not FILE:CLASS"):
            model(processor="my_proc.py", **{key: "raw.jsonl"})
        # With only built-in data nothing would go through it: refused, not ignored.
        with pytest.raises(ValidationError, match="processor applies to your data files"):
            model(processor="my_proc.py:QA", **{key: "builtin:synth"})
        assert model(processor="my_proc.py:QA", **{key: "builtin:synth"}, **_eval_key(model)).processor


def _eval_key(model):
    """A user eval file next to built-in training data: the processor reads that one."""
    name = {"RewardConfig": "eval_dataset", "VLRewardConfig": "val_data"}.get(model.__name__, "eval_data")
    return {name: "dev.jsonl"}


# ---------------------------------------------------------------------------------------------- seed options


def _groups_file(tmp_path):
    """Six records: record i has i % 3 + 1 positives and i negatives (0..5)."""
    rows = [
        {
            "query": f"q{i}",
            "pos": [f"p{i}.{j}" for j in range(i % 3 + 1)],
            "neg": [f"n{i}.{j}" for j in range(i)],
        }
        for i in range(6)
    ]
    return _write(tmp_path / "groups.jsonl", rows)


def test_max_records_reads_only_the_first_records(tmp_path, rerankctl_home):
    from rerankctl.data.rerank_dataset import RerankDataset
    from rerankctl.data.streaming import StreamingRerankDataset
    from rerankctl.data.validate import load_records

    path = _groups_file(tmp_path)
    assert [r.query for r in load_records(path, max_records=4)[0]] == ["q0", "q1", "q2", "q3"]
    data = RerankDataset(path, n_docs=0, max_records=4, cache_dir=str(tmp_path / "c"))
    assert [data.record(i).query for i in range(len(data))] == ["q0", "q1", "q2", "q3"]
    full = RerankDataset(path, n_docs=0, cache_dir=str(tmp_path / "c"))
    assert len(full) == 6  # the cap is part of the cache key
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(RerankDataset(rows, n_docs=0, max_records=2)) == 2
    # Two shards of the stream stop at the same place: together they read exactly records 0-3.
    seen = []
    for rank in (0, 1):
        stream = StreamingRerankDataset(path, n_docs=0, max_records=4, rank=rank, world_size=2)
        seen += [r.query for _, _, r in stream.iter_records()]
    assert sorted(seen) == ["q0", "q1", "q2", "q3"]


def test_max_records_counts_lines_before_the_processor(proc, raw, rerankctl_home, tmp_path):
    from rerankctl.data.rerank_dataset import RerankDataset

    # raw: q1, q2 (dropped by the processor), q3. The first 2 lines hold one usable record.
    data = RerankDataset(raw, n_docs=0, processor=f"{proc}:QA", max_records=2, cache_dir=str(tmp_path / "c"))
    assert len(data) == 1 and data.processor_dropped == 1


@pytest.mark.parametrize(
    ("min_pos", "min_neg", "kept"), [(0, 0, 6), (2, 0, 4), (0, 3, 3), (2, 3, 2), (3, 5, 1)]
)
def test_min_pos_min_neg_drop_small_groups(tmp_path, rerankctl_home, min_pos, min_neg, kept):
    from rerankctl.data.rerank_dataset import RerankDataset
    from rerankctl.data.streaming import StreamingRerankDataset

    # positives per record 1, 2, 3, 1, 2, 3; negatives 0..5 (see _groups_file).
    path = _groups_file(tmp_path)
    expected = [f"q{i}" for i in range(6) if i % 3 + 1 >= min_pos and i >= min_neg]
    assert len(expected) == kept
    data = RerankDataset(path, n_docs=0, min_pos=min_pos, min_neg=min_neg, cache_dir=str(tmp_path / "c"))
    assert [data.record(i).query for i in range(len(data))] == expected and data.too_few_dropped == 6 - kept
    stream = StreamingRerankDataset(path, n_docs=0, min_pos=min_pos, min_neg=min_neg, rank=0, world_size=1)
    assert [r.query for _, _, r in stream.iter_records()] == expected and stream.too_few_dropped == 6 - kept


def test_min_neg_that_drops_everything_is_an_error(tmp_path, rerankctl_home):
    from rerankctl.data.rerank_dataset import RerankDataset
    from rerankctl.errors import DataError

    with pytest.raises(DataError, match=r"every group \(6\) has fewer than 0 positive\(s\) or 99 negative"):
        RerankDataset(_groups_file(tmp_path), n_docs=0, min_neg=99, cache_dir=str(tmp_path / "c"))
