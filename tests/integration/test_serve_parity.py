"""`rerankctl eval parity` against live servers: the same model passes at 1e-5 with τ = 1; a server
with another instruction fails, and the report names the cause."""

from __future__ import annotations

import json

import pytest
from cli_helpers import main_exit as _main

from rerankctl.eval.parity import kendall_tau, top_k_flips
from rerankctl.serve.app import ServeSettings, create_app
from rerankctl.serve.runner import BackgroundServer


def test_kendall_tau_and_flips_on_worked_examples():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    pairs = [("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "y")]
    assert top_k_flips(pairs, [3, 2, 1, 1, 2], [3, 1, 2, 1, 2], k=1) == 0
    assert top_k_flips(pairs, [3, 2, 1, 1, 2], [3, 1, 2, 1, 2], k=2) == 1


@pytest.fixture(scope="module")
def servers(tiny_qwen3_path):
    from rerankctl.models.reranker import Qwen3Reranker

    model = Qwen3Reranker(str(tiny_qwen3_path), device="cpu", dtype="fp32", max_length=128)
    same = BackgroundServer(create_app(model, ServeSettings(max_wait_ms=1)))
    other = BackgroundServer(create_app(model, ServeSettings(max_wait_ms=1, instruction="Find the recipe")))
    with same, other:
        yield same.url, other.url


def test_parity_passes_for_the_same_model_and_names_the_instruction_difference(
    servers, tiny_qwen3_path, capsys
):
    same, other = servers
    args = ["eval", "parity", "--model", str(tiny_qwen3_path), "--max-length", "128", "--json"]
    code, out, _ = _main([*args, "--endpoints", same + "/v1/rerank"], capsys)
    (result,) = json.loads(out)
    assert code == 0 and result["passed"]
    assert result["max_abs_diff"] <= 1e-5 and result["kendall_tau"] == 1.0 and result["top_k_flips"] == 0
    assert result["n_pairs"] == 50

    code, out, _ = _main([*args, "--endpoints", same, other], capsys)
    first, second = json.loads(out)
    assert code == 1 and first["passed"] and not second["passed"]
    assert second["max_abs_diff"] > 1e-3
    assert any("instruction" in cause for cause in second["causes"]), second["causes"]

    from rerankctl.store import RunStore

    with RunStore.open() as store:
        rows = store.evals()
    assert {(r.dataset, r.metric) for r in rows} >= {("parity", "max_abs_dp"), ("parity", "kendall_tau")}


def test_parity_covers_an_export_in_crossencoder_and_transformers(servers, tiny_qwen3_path, tmp_path, capsys):
    from rerankctl.models.export import to_seq_cls

    exported = to_seq_cls(tiny_qwen3_path, tmp_path / "seq-cls", max_length=128)
    code, out, _ = _main(
        ["eval", "parity", "--model", str(tiny_qwen3_path), "--max-length", "128", "--json",
         "--endpoints", servers[0], "--export", str(exported)],
        capsys,
    )  # fmt: skip
    results = json.loads(out)
    assert [r["endpoint"].split(":")[0] for r in results] == ["http", "transformers", "crossencoder"]
    assert code == 0 and all(r["passed"] and r["max_abs_diff"] <= 1e-5 for r in results), results
