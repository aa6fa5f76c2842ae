"""`eval`, `eval reward`, `serve`, `rerank`, `export`: options built from their config models.

The same generator as the train commands (cli/_options.py): every field is an option with its
description as help, the shared scoring flags are one declaration (config/scoring.py), the older
spellings still parse, and the values reach the code that loads the model.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
import typer.testing
from typer.testing import CliRunner

from rerankctl.cli._options import option_specs
from rerankctl.cli.app import build_app
from rerankctl.config.eval import EvalConfig, EvalParityConfig, EvalRewardConfig
from rerankctl.config.rerank import ExportConfig, RerankConfig
from rerankctl.config.scoring import ScoringSettings
from rerankctl.config.serve import ServeConfig

runner = CliRunner()
APP = build_app()
ROOT = typer.main.get_command(APP).load_all()
COMMANDS = {
    ("eval",): EvalConfig,
    ("eval", "reward"): EvalRewardConfig,
    ("eval", "parity"): EvalParityConfig,
    ("serve",): ServeConfig,
    ("rerank",): RerankConfig,
    ("export",): ExportConfig,
}


@pytest.fixture(autouse=True)
def _reuse_command_tree(monkeypatch):
    monkeypatch.setattr(
        typer.testing, "_get_command", lambda app: ROOT if app is APP else typer.main.get_command(app)
    )


def _command(path):
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _invoke(*args: str):
    return runner.invoke(APP, list(args), prog_name="rerankctl", env={"COLUMNS": "200"})


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_config_field_is_an_option_with_its_description_and_default(path):
    cmd = _command(path)
    by_name = {p.name: p for p in cmd.params}
    ctx = cmd.make_context("rerankctl", [], resilient_parsing=True)
    for spec in option_specs(COMMANDS[path]):
        param = by_name[spec.param]
        assert param.help.startswith(spec.help) and spec.flags[0] in param.opts, spec.key
        if spec.default not in (None, [], "") and not param.hidden:
            assert "default:" in param.get_help_record(ctx)[1], spec.key


def test_the_help_walk_reaches_the_scoring_commands():
    """tests/unit/test_cli_options.py walks every --help (no `<bool>`, defaults shown): these are in it."""
    from tests.unit.test_cli_options import _paths

    assert set(COMMANDS) <= set(_paths())


def test_shared_scoring_flags_are_one_declaration():
    """--device, --dtype, --quantize, --max-length, --shared-prefix, --instruction read the same everywhere."""
    shared = [s.param for s in option_specs(ScoringSettings)]
    helps = {}
    for path in (("eval",), ("serve",), ("rerank",)):
        by_name = {p.name: p for p in _command(path).params}
        helps[path] = {name: (by_name[name].opts, by_name[name].help) for name in shared}
    assert helps[("eval",)] == helps[("serve",)] == helps[("rerank",)]
    for path in (("eval",), ("rerank",), ("eval", "reward")):
        by_name = {p.name: p for p in _command(path).params}
        assert by_name["batch_size"].opts == ["--batch-size"]  # as in train sft|rl|reward|vl-reward


def test_old_spellings_still_parse():
    out = _invoke(
        "eval", "--endpoint", "http://a", "--batch", "4", "--dataset", "T2", "--print-config"
    ).stdout
    assert 'endpoints = [\n    "http://a",\n]' in out and "batch_size = 4" in out and '"T2"' in out
    out = _invoke("eval", "parity", "-m", "m", "--endpoint", "http://a", "http://b", "--print-config").stdout
    assert 'endpoints = [\n    "http://a",\n    "http://b",\n]' in out
    out = _invoke("export", "ckpt", "--output-dir", "o", "--print-config").stdout
    assert 'output = "o"' in out
    out = _invoke("eval", "reward", "--model", "m", "--dataset", "d", "--batch", "3", "--print-config").stdout
    assert "batch_size = 3" in out and 'data = "d"' in out


def test_ranges_and_choices_are_usage_errors_naming_the_flag():
    result = _invoke("rerank", "-m", "x", "-q", "q", "d", "--max-length", "8")
    assert result.exit_code == 2 and "--max-length" in result.output
    result = _invoke("serve", "-m", "x", "--dtype", "fp8")
    assert result.exit_code == 2 and "unknown dtype 'fp8'" in result.output
    result = _invoke("export", "ckpt", "-o", "x", "--to", "onnx")
    assert result.exit_code == 2 and "unknown to 'onnx'" in result.output


def test_required_options_say_so_in_help():
    for path, name in ((("serve",), "model"), (("rerank",), "model"), (("export",), "output")):
        by_name = {p.name: p for p in _command(path).params}
        assert by_name[name].help.endswith("(required)"), path
        assert not by_name["instruction" if name == "model" else "to"].help.endswith("(required)")
    assert "(required)" in _invoke("export", "--help").stdout


def test_missing_required_option_is_named(capsys):
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", "--port", "0"])
    assert exc.value.code == 2 and "missing option '--model'" in capsys.readouterr().err


def test_scoring_flags_reach_the_reranker(monkeypatch, tmp_path):
    """--dtype, --no-shared-prefix, --max-length, --instruction: `rerank` and `eval --model` pass them on."""
    pytest.importorskip("torch")
    import rerankctl.models.reranker as reranker_module

    seen: list[dict] = []

    class Fake:
        def __init__(self, path, **kw):
            seen.append({"path": path, **kw})

        def rerank(self, query, docs, instruction=None, batch_size=32):
            return list(range(len(docs))), [0.0] * len(docs)

    monkeypatch.setattr(reranker_module, "Qwen3Reranker", Fake)
    flags = ["--dtype", "fp32", "--no-shared-prefix", "--max-length", "64", "--instruction", "Find it"]
    result = _invoke("rerank", "-m", str(tmp_path), "-q", "q", "a", "b", "--json", *flags)
    assert result.exit_code == 0, result.output
    assert seen[0]["dtype"] == "fp32" and seen[0]["shared_prefix"] is False
    assert seen[0]["max_length"] == 64 and seen[0]["instruction"] == "Find it"

    import tomllib

    from rerankctl.eval.runner import build_local

    printed = _invoke("eval", "--model", str(tmp_path), *flags, "--print-config")
    cfg = EvalConfig.model_validate(tomllib.loads(printed.stdout))
    build_local(cfg, str(tmp_path))
    assert {k: seen[1][k] for k in ("dtype", "shared_prefix", "max_length", "instruction")} == {
        "dtype": "fp32",
        "shared_prefix": False,
        "max_length": 64,
        "instruction": "Find it",
    }


def test_bad_eval_flag_exits_2_fast_without_torch():
    probe = (
        "import sys\nfrom rerankctl.cli.main import main\n"
        "try:\n    main(['eval', '--model', 'm', '--quantize', 'int4'])\n"
        "except SystemExit as e:\n    print('torch' in sys.modules, e.code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "2"], proc.stderr
