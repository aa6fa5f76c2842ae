"""`--chunk-size auto` (train/auto_chunk.py): the config value, the plan by hand, the probe, same weights."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from rerankctl.errors import UsageError
from rerankctl.train import auto_chunk
from rerankctl.train.auto_chunk import MIN_RESERVE, plan_chunk

MiB = 2**20


def test_chunk_size_is_auto_by_default_or_a_whole_number():
    from rerankctl.config.rl import RLConfig
    from rerankctl.config.sft import SFTConfig

    assert SFTConfig().chunk_size == "auto" and RLConfig().chunk_size == "auto"
    assert SFTConfig(chunk_size=4).chunk_size == "4"  # a TOML/preset integer
    assert SFTConfig(chunk_size="AUTO").chunk_size == "auto"
    assert SFTConfig(chunk_size="0").chunk_size == "0"
    for bad in (-1, "x", "4.5", True):
        with pytest.raises(ValueError):
            SFTConfig(chunk_size=bad)


def test_plan_by_hand():
    # 2 GiB free, no optimizer state: reserve = max(512 MiB, 10 %) = 512 MiB; room 1536 MiB;
    # a row of 100 MiB with the 1.25 safety factor takes 125 MiB: 12 rows fit.
    plan = plan_chunk(rows_per_step=32, bytes_per_row=100 * MiB, free=2048 * MiB, fixed=0)
    assert plan.reserve == MIN_RESERVE and plan.rows_fit == 12 and plan.chunk_size == 12
    # 100 MiB of optimizer state costs 0.8 rows: 11.
    assert plan_chunk(32, 100 * MiB, 2048 * MiB, fixed=100 * MiB).chunk_size == 11
    # Every row of the step fits: no chunking at all (0), no extra no-grad forward.
    assert plan_chunk(8, 100 * MiB, 2048 * MiB, 0).chunk_size == 0
    # On the host only half the free memory is planned for: (1024 - 512) / 125 = 4 rows.
    assert plan_chunk(32, 100 * MiB, 2048 * MiB, 0, fraction=0.5).chunk_size == 4
    # 20 GiB free: the reserve is 10 % (2 GiB).
    assert plan_chunk(1000, 100 * MiB, 20480 * MiB, 0).reserve == 2048 * MiB


def test_not_even_one_row_is_a_clear_usage_error():
    with pytest.raises(UsageError, match="not even one document fits") as info:
        plan_chunk(32, 4096 * MiB, 2048 * MiB, 0, device="cpu", source="test")
    assert info.value.exit_code == 2 and "--max-length" in info.value.hint


def test_the_probe_measures_activations_linear_in_tokens_and_leaves_the_rng_alone(tiny_qwen3_path):
    import torch

    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import load_model_for_training

    model = load_model_for_training(SFTConfig(), str(tiny_qwen3_path))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    short = auto_chunk.measure_row_bytes(model, 9454, 2152, 128)
    assert torch.equal(torch.rand(3), expected)  # the probe's dropout did not consume the run's stream
    long = auto_chunk.measure_row_bytes(model, 9454, 2152, 256)
    assert short > 0 and 1.8 < long / short < 2.6  # ~linear (sdpa), a little more for attention
    # The analytic estimate (used only before the probe) is within a small factor of the measurement.
    rough = auto_chunk.analytic_row_bytes(model, 256, 4)
    assert 0.2 < rough / long < 5


def test_host_free_memory_reads_this_machine():
    free, source = auto_chunk.host_free_memory()
    assert free > 0 and source


def _records(n: int) -> list[dict]:
    return [
        {"query": f"query {i}", "pos": [f"good answer {i}"], "neg": [f"bad {i} {j}" for j in range(5)]}
        for i in range(n)
    ]


def _train(
    tmp_path: Path, model_path: Path, name: str, chunk: str, monkeypatch=None, free: int | None = None
):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import run_sft

    data = tmp_path / "train.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps(r) + "\n" for r in _records(8)), encoding="utf-8")
    if free is not None:
        monkeypatch.setattr(auto_chunk, "host_free_memory", lambda: (free, "test"))
        monkeypatch.setattr(auto_chunk, "training_device", lambda: __import__("torch").device("cpu"))
    cfg = SFTConfig(
        model=str(model_path),
        data=str(data),
        output=str(tmp_path / name),
        chunk_size=chunk,
        n_docs=4,
        batch_size=2,
        max_steps=2,
        max_length=96,
        learning_rate=1e-2,
        lora={"dropout": 0.0},
        save_steps=1000,
        logging_steps=1,
    )
    return run_sft(cfg, store_path=str(tmp_path / "store.db"))


def _weights(final_dir: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(final_dir.glob("*.safetensors"))
    assert files, f"no weights in {final_dir}"
    out = {}
    for f in files:
        out.update(load_file(str(f)))
    return out


@pytest.mark.slow
def test_auto_gives_the_same_weights_as_the_explicit_chunk_it_chose(tmp_path, tiny_qwen3_path, monkeypatch):
    import re

    import torch

    from rerankctl.config.sft import SFTConfig
    from rerankctl.store import RunStore
    from rerankctl.train.sft_runner import load_model_for_training

    # Free memory is made small enough that auto must chunk the 8 rows of a step (room for ~3).
    model = load_model_for_training(SFTConfig(lora={"dropout": 0.0}), str(tiny_qwen3_path))
    row = auto_chunk.measure_row_bytes(model, 9454, 2152, 96)
    fixed = auto_chunk.optimizer_state_bytes(model)
    free = int(2 * (MIN_RESERVE + fixed + 3.5 * 1.25 * row))  # the host plans for half of it

    auto = _train(tmp_path, tiny_qwen3_path, "auto", "auto", monkeypatch, free)
    store = RunStore.open(str(tmp_path / "store.db"))
    events = [e.message for e in store.events(auto.run_id)]
    chosen = [int(m.group(1)) for e in events if (m := re.match(r"chunk_size auto = (\d+):", e))]
    assert len(chosen) == 1 and 1 < chosen[0] < 8, events  # a real chunk of the 8 rows
    assert store.latest_metrics(auto.run_id)["chunk_size"][1] == chosen[0]

    explicit = _train(tmp_path, tiny_qwen3_path, "explicit", str(chosen[0]))
    whole = _train(tmp_path, tiny_qwen3_path, "whole", "0")
    a, b, c = _weights(auto.final_dir), _weights(explicit.final_dir), _weights(whole.final_dir)
    assert a.keys() == b.keys() == c.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # the same chunk: bit for bit (the probe changes nothing)
        assert torch.allclose(a[key], c[key], atol=1e-5, rtol=1e-4), key  # chunking is exact


def test_auto_refuses_before_training_when_one_row_cannot_fit(tmp_path, tiny_qwen3_path, monkeypatch):
    with pytest.raises(UsageError, match="not even one document fits"):
        _train(tmp_path, tiny_qwen3_path, "nope", "auto", monkeypatch, free=2 * MIN_RESERVE)


def test_the_checkpointed_probe_adds_one_layer_to_what_checkpointing_keeps(monkeypatch, tiny_qwen3_path):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import load_model_for_training

    model = load_model_for_training(SFTConfig(), str(tiny_qwen3_path))  # 2 layers
    # Hand-computed: the unchecked forward keeps 1000 bytes, the checkpointed one 300 (layer inputs and
    # the outside of the layers); backward recomputes one of 2 layers (500): (300 + 500) / 2 rows = 400.
    saved = iter([1000, 300])
    monkeypatch.setattr(auto_chunk, "_saved_bytes", lambda model, run: next(saved))
    assert auto_chunk.measure_row_bytes(model, 9454, 2152, 64, rows=2, gradient_checkpointing=True) == 400
    assert not auto_chunk._checkpointing(model)  # the probe leaves the model as it found it


def test_the_probe_goes_through_the_packed_path_and_checkpointing_keeps_less(tiny_qwen3_path):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.models.shared_prefix import is_enabled
    from rerankctl.train.sft_runner import load_model_for_training

    model = load_model_for_training(SFTConfig(), str(tiny_qwen3_path))
    plain = auto_chunk.measure_row_bytes(model, 9454, 2152, 256, rows=2, shared_prefix=False)
    assert not is_enabled(model)
    packed = auto_chunk.measure_row_bytes(model, 9454, 2152, 256, rows=2, shared_prefix=True)
    assert is_enabled(model)  # the trainer's scoring function ran: the packed attention is installed
    # Random rows share no head: a packed document costs about what an unshared one does, not less.
    assert 0.8 < packed / plain < 1.5
    checkpointed = auto_chunk.measure_row_bytes(model, 9454, 2152, 256, rows=1, gradient_checkpointing=True)
    assert 0 < checkpointed < plain and not auto_chunk._checkpointing(model)


def test_auto_turns_on_gradient_checkpointing_when_one_row_fits_only_with_it(monkeypatch, tiny_qwen3_path):
    import torch

    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import load_model_for_training

    cfg = SFTConfig(model=str(tiny_qwen3_path), n_docs=4, batch_size=2, max_length=96, lora={"dropout": 0.0})
    model = load_model_for_training(cfg, str(tiny_qwen3_path))
    plain = auto_chunk.measure_row_bytes(model, 9454, 2152, 96, rows=2, shared_prefix=True)
    checked = auto_chunk.measure_row_bytes(
        model, 9454, 2152, 96, rows=1, shared_prefix=True, gradient_checkpointing=True
    )
    fixed = auto_chunk.optimizer_state_bytes(model)
    # Room (half of free, minus reserve and optimizer state) for 1.3 checkpointed rows, < 1 plain row.
    assert 1.3 * checked < plain
    free = int(2 * (MIN_RESERVE + fixed + 1.3 * 1.25 * checked))
    monkeypatch.setattr(auto_chunk, "host_free_memory", lambda: (free, "test"))
    monkeypatch.setattr(auto_chunk, "training_device", lambda: torch.device("cpu"))
    chunk, plan = auto_chunk.resolve_chunk_size(cfg, model, 9454, 2152)
    assert plan.turned_on and plan.gradient_checkpointing and cfg.gradient_checkpointing
    assert chunk == plan.rows_fit == 1 and abs(plan.bytes_per_row - checked) < 0.05 * checked
    assert "gradient checkpointing turned on" in plan.describe()
    assert plan.metrics()["gradient_checkpointing"] == 1.0
    # With checkpointing asked for, it is measured directly and nothing is "turned on".
    cfg2 = SFTConfig(
        model=str(tiny_qwen3_path), n_docs=4, batch_size=2, max_length=96, gradient_checkpointing=True
    )
    _, plan2 = auto_chunk.resolve_chunk_size(cfg2, model, 9454, 2152)
    assert plan2.gradient_checkpointing and not plan2.turned_on


def test_not_even_one_checkpointed_row_is_refused_naming_checkpointing(monkeypatch, tiny_qwen3_path):
    import torch

    from rerankctl.config.sft import SFTConfig
    from rerankctl.train.sft_runner import load_model_for_training

    cfg = SFTConfig(model=str(tiny_qwen3_path), n_docs=4, batch_size=2, max_length=96)
    model = load_model_for_training(cfg, str(tiny_qwen3_path))
    monkeypatch.setattr(auto_chunk, "host_free_memory", lambda: (2 * MIN_RESERVE, "test"))
    monkeypatch.setattr(auto_chunk, "training_device", lambda: torch.device("cpu"))
    with pytest.raises(UsageError, match="even with gradient checkpointing"):
        auto_chunk.resolve_chunk_size(cfg, model, 9454, 2152)
    assert not cfg.gradient_checkpointing  # refused: nothing turned on


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc",
    reason="the allocator bound is a glibc mallopt; elsewhere it is a no-op",
)
def test_the_host_allocator_bound_takes_effect_on_glibc():
    """In a fresh interpreter (mallopt is process-wide): glibc accepts both settings and says so.

    The RSS effect itself is measured by bench/auto_chunk_rss.py (1.39x -> 1.00x of saved bytes).
    """
    import subprocess
    import sys

    code = "from rerankctl.train.auto_chunk import bound_host_allocator as b; print(b()); print(b())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, second = out.splitlines()
    assert first == second == "glibc mmap/trim threshold fixed at 1 MiB (freed activations go back to the OS)"
