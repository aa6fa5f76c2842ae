"""Options built from the config models: one declaration per option, honest --help, fast bad-flag errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
import typer.testing
from typer.testing import CliRunner

from rerankctl.cli._options import option_specs
from rerankctl.cli.app import build_app
from rerankctl.config.reward import RewardConfig
from rerankctl.config.rl import RLConfig
from rerankctl.config.sft import SFTConfig
from rerankctl.config.vl_reward import VLRewardConfig

runner = CliRunner()
APP = build_app()
ROOT = typer.main.get_command(APP).load_all()
TRAIN = {"sft": SFTConfig, "rl": RLConfig, "reward": RewardConfig, "vl-reward": VLRewardConfig}


@pytest.fixture(autouse=True)
def _reuse_command_tree(monkeypatch):
    monkeypatch.setattr(
        typer.testing, "_get_command", lambda app: ROOT if app is APP else typer.main.get_command(app)
    )


def _paths():
    out = []

    def walk(cmd, path):
        out.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(ROOT, ())
    return out


def _help(*args: str) -> str:
    result = runner.invoke(APP, [*args, "--help"], prog_name="rerankctl", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", _paths(), ids=lambda p: " ".join(p) or "rerankctl")
def test_no_typer_type_labels_in_any_help(path):
    """Flags show no metavar; values show INTEGER/FLOAT/TEXT/PATH/choices, never `<bool>` or `<list[str]>`."""
    text = _help(*path)
    assert not re.search(r"<(bool|int|float|str|list\[[a-z]+\]|path|float range|int range)>", text), text


@pytest.mark.parametrize("path", [p for p in _paths() if p], ids=lambda p: " ".join(p))
def test_every_option_with_a_default_shows_it(path):
    """Every option of every command whose default is a value (not None/empty/False flag) shows it."""
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]
    ctx = cmd.make_context("rerankctl", [], resilient_parsing=True)
    for param in cmd.params:
        if param.hidden or param.param_type_name != "option" or param.name in ("help",):
            continue
        default = param.get_default(ctx, call=True)
        if default in (None, [], (), "") or param.is_flag and not param.secondary_opts:
            continue
        record = param.get_help_record(ctx)
        assert record and "default:" in record[1], (path, param.name, record)


@pytest.mark.parametrize("name", TRAIN)
def test_every_config_field_is_an_option_with_its_description(name):
    """The option list *is* the config: every exposed field, its description as the help."""
    cmd = ROOT.commands["train"].commands[name]
    by_name = {p.name: p for p in cmd.params}
    for spec in option_specs(TRAIN[name]):
        param = by_name[spec.param]
        assert param.help.startswith(spec.help), spec.key
        assert spec.flags[0] in param.opts


def test_train_sft_help_shows_defaults_and_flag_help():
    text = _help("train", "sft")
    for expected in ("[default: infonce]", "[default: 512]", "[default: 0.0001]", "[default: no-bf16]"):
        assert expected in text
    row = next(line for line in text.splitlines() if "--gradient-checkpointing" in line)
    assert "Recompute activations" in row
    assert "bf16 mixed precision" in text and "fp16 mixed precision" in text


def test_preset_values_become_the_shown_defaults():
    text = _help("train", "sft", "--preset", "tiny")
    assert "[default: builtin:tiny-qwen3]" in text and "[default: 0.002]" in text


def test_presets_are_listed_per_command():
    sft = _help("train", "sft")
    preset_help = sft[sft.index("--preset") : sft.index("--print-config")]
    assert "tiny," in preset_help or "tiny)" in preset_help
    for other in ("tiny_rl", "tiny_reward", "tiny_vl_reward", "qwen2vl_2b_reward"):
        assert other not in preset_help
    assert "tiny_vl_reward" in _help("train", "vl-reward")


def _print_config(*args: str) -> str:
    result = runner.invoke(APP, ["train", *args, "--print-config"], prog_name="rerankctl")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_same_flag_names_in_every_train_command_and_old_spellings_still_work():
    assert 'dataset = "a.jsonl"' in _print_config("reward", "--data", "a.jsonl")
    assert 'dataset = "a.jsonl"' in _print_config("reward", "--dataset", "a.jsonl")
    assert "batch = 3" in _print_config("reward", "--batch-size", "3")
    assert "batch = 3" in _print_config("vl-reward", "--batch=3")
    out = _print_config("vl-reward", "--data", "t.jsonl", "--eval-data", "v.jsonl", "-o", "out")
    assert 'train_data = "t.jsonl"' in out and 'val_data = "v.jsonl"' in out and 'output_dir = "out"' in out
    assert 'val_data = "v.jsonl"' in _print_config("vl-reward", "--val-data", "v.jsonl")
    assert "batch_size = 5" in _print_config("sft", "--batch-size", "5")
    assert "learning_rate = 0.003" in _print_config("sft", "--learning-rate", "3e-3")
    assert "enabled = false" in _print_config("reward", "--lora", "--no-lora")
    assert "enabled = false" in _print_config("sft", "--full")
    import tomllib

    sft = tomllib.loads(_print_config("sft", "--report-to", "tensorboard,mlflow", "--report-to", "wandb"))
    assert sft["report_to"] == ["tensorboard", "mlflow", "wandb"]
    assert tomllib.loads(_print_config("reward"))["report_to"] == []


def test_defaults_and_presets_are_not_flags():
    """An option left alone does not override the preset: tiny's lr stays, the flag's wins."""
    assert "learning_rate = 0.002" in _print_config("sft", "--preset", "tiny")
    assert "learning_rate = 0.01" in _print_config("sft", "--preset", "tiny", "--lr", "0.01")


def test_seed_spellings_of_choices_are_accepted():
    out = _print_config("sft", "--loss-type", "lambda_loss", "--infonce-mode", "posset")
    assert 'loss_type = "lambdaloss"' in out and 'infonce_mode = "positive_set"' in out
    assert 'loss_type = "dr_grpo"' in _print_config("rl", "--loss-type", "dr-grpo")


def test_bad_choice_is_a_usage_error_naming_the_flag_and_choices():
    result = runner.invoke(APP, ["train", "sft", "--loss-type", "bogus"], prog_name="rerankctl")
    assert result.exit_code == 2
    assert "--loss-type" in result.output and "infonce" in result.output


def test_bad_choice_exits_2_in_under_a_second_without_torch():
    """A fresh process: exit 2, under a CPU-second, and torch never imported (checked by the process itself).

    CPU time, not wall time: on this shared 2-core machine the wall clock measures the other jobs
    (bench/startup.py records both).
    """
    import resource

    probe = (
        "import sys\nfrom rerankctl.cli.main import main\n"
        "try:\n    main(['train', 'sft', '--loss-type', 'bogus'])\n"
        "except SystemExit as e:\n    print('torch' in sys.modules, e.code)\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.stdout.split() == ["False", "2"], proc.stderr
    assert cpu < 1.0


def test_near_miss_command_suggests_the_right_one():
    result = runner.invoke(APP, ["trian", "sft"], prog_name="rerankctl")
    assert result.exit_code == 2 and "Did you mean 'train'" in result.output
    result = runner.invoke(APP, ["train", "sfft"], prog_name="rerankctl")
    assert result.exit_code == 2 and "Did you mean 'sft'" in result.output


def test_eval_model_max_length_reaches_the_local_reranker(monkeypatch):
    """`eval --model DIR --max-length N` (serve and eval reward had it; eval --model did not)."""
    pytest.importorskip("torch")
    import rerankctl.models.reranker as reranker_module
    from rerankctl.eval.runner import EvalOptions, build_local

    seen = {}
    monkeypatch.setattr(reranker_module, "Qwen3Reranker", lambda path, **kw: seen.update(path=path, **kw))
    build_local(EvalOptions(models=["m"], max_length=256), "m")
    assert seen["path"] == "m" and seen["max_length"] == 256
    result = runner.invoke(APP, ["eval", "--model", "m", "--max-length", "8"], prog_name="rerankctl")
    assert result.exit_code == 2 and "--max-length" in result.output
