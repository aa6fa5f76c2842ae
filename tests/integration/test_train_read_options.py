"""`train sft` / `train rl` read their data through --processor, --max-samples and --min-pos/--min-neg.

The tiny model on a custom-shape file: the run's config records the processor (absolute path) and
the caps, its events say what the processor and the group filter dropped, and the training groups
are the ones expected (counted here by hand from the file).
"""

from __future__ import annotations

import json
import textwrap

import pytest
from cli_helpers import main_exit as _main

PROC = textwrap.dedent(
    """
    class Custom:
        def __call__(self, record):
            if record["id"] % 5 == 4:
                return None  # every fifth record dropped
            return {"query": record["ask"], "pos": record["yes"], "neg": record["no"]}
    """
)


@pytest.fixture
def custom_data(tmp_path):
    """30 records in a shape rerankctl does not know; record i has i % 3 negatives (0, 1 or 2)."""
    from rerankctl.data.synth import synth_rerank

    rows = []
    for i, rec in enumerate(synth_rerank(30, seed=1)):
        rows.append({"id": i, "ask": rec["query"], "yes": rec["pos"][:1], "no": rec["neg"][: i % 3]})
    data = tmp_path / "custom.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = tmp_path / "proc.py"
    proc.write_text(PROC)
    return data, proc


def _preset(tmp_path, model, command, extra=""):
    path = tmp_path / f"{command.replace(' ', '_')}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            model = "{model}"
            max_length = 96
            n_docs = 0
            n_pos = 0
            max_docs = 4
            batch_size = 2
            logging_steps = 1
            {extra}
            [lora]
            enabled = false
            [preset]
            command = "{command}"
            description = "test"
            """
        )
    )
    return path


def _run_events(name):
    from rerankctl.store import RunStore

    store = RunStore.open()
    run = store.get_run(name)
    return run, [e.message for e in store.events(run.id)]


def test_sft_reads_through_processor_max_samples_and_min_neg(custom_data, tmp_path, tiny_qwen3_path, capsys):
    data, proc = custom_data
    preset = _preset(tmp_path, tiny_qwen3_path, "train sft", 'loss_type = "infonce"')
    argv = ["train", "sft", "--preset", str(preset), "--data", str(data), "--processor", f"{proc}:Custom"]
    argv += ["--max-samples", "20", "--min-neg", "1", "--max-steps", "2", "--run-name", "p1"]
    code, _out, err = _main([*argv, "-o", str(tmp_path / "run")], capsys)
    assert code == 0, err
    run, events = _run_events("p1")
    assert run.config["processor"] == f"{proc.resolve()}:Custom"
    assert (run.config["max_samples"], run.config["min_neg"]) == (20, 1)
    # Of the first 20 lines, 4 are dropped by the processor (ids 4, 9, 14, 19); of the 16 left,
    # those with id % 3 == 0 have no negative: ids 0, 3, 6, 12, 15, 18 -> 6 groups dropped.
    assert f"{data}: read through processor {proc.resolve()}:Custom" in " ".join(events)
    assert any("4 record(s) dropped by it" in e for e in events), events
    assert any("dropped 6 group(s) with fewer than 0 positive(s) or 1 negative(s)" in e for e in events), (
        events
    )


def test_sft_bad_processor_fails_before_any_run(custom_data, tmp_path, tiny_qwen3_path, capsys):
    data, proc = custom_data
    preset = _preset(tmp_path, tiny_qwen3_path, "train sft")
    argv = ["train", "sft", "--preset", str(preset), "--data", str(data), "--processor", f"{proc}:Nope"]
    code, _out, err = _main([*argv, "--run-name", "bad"], capsys)
    assert code == 2 and "proc.py has no 'Nope'" in err
    from rerankctl.store import RunStore

    assert [r for r in RunStore.open().list_runs() if r.name == "bad"] == []


def test_sft_processor_error_names_the_line(custom_data, tmp_path, tiny_qwen3_path, capsys):
    data, proc = custom_data
    broken = tmp_path / "broken.py"
    broken.write_text("def f(record):\n    return {'query': record['missing_key']}\n")
    preset = _preset(tmp_path, tiny_qwen3_path, "train sft")
    argv = ["train", "sft", "--preset", str(preset), "--data", str(data), "--processor", f"{broken}:f"]
    code, _out, err = _main([*argv, "--max-steps", "1"], capsys)
    assert code == 2, err
    assert f"{data}:1: processor f raised KeyError: 'missing_key'" in err


def test_rl_reads_through_processor_and_min_neg(custom_data, tmp_path, tiny_qwen3_path, capsys):
    data, proc = custom_data
    argv = ["train", "rl", "--preset", "tiny_rl", "--sft-model", str(tiny_qwen3_path), "--data", str(data)]
    argv += ["--processor", f"{proc}:Custom", "--min-neg", "2", "--max-docs", "4", "--num-samples", "2"]
    argv += ["--batch-size", "2", "--max-steps", "1", "--run-name", "r1", "-o", str(tmp_path / "rl")]
    code, _out, err = _main(argv, capsys)
    assert code == 0, err
    run, events = _run_events("r1")
    assert run.config["processor"] == f"{proc.resolve()}:Custom" and run.config["min_neg"] == 2
    # 30 lines, 6 dropped by the processor (ids 4, 9, ..., 29); of the 24 left those with
    # id % 3 != 2 have fewer than 2 negatives: 24 - 8 (ids 2, 5, 8, 11, 17, 20, 23, 26) = 16.
    assert any("6 record(s) dropped by it" in e for e in events), events
    assert any("dropped 16 group(s)" in e for e in events), events
