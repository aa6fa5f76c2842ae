"""`rerankctl runs ...` through the real Typer app, against a store with known contents."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
import typer
import typer.testing
from typer.testing import CliRunner

from rerankctl.cli.app import build_app
from rerankctl.errors import DependencyError, NotFoundError, UsageError
from rerankctl.store import RunStore

runner = CliRunner()
APP = build_app()
ROOT = typer.main.get_command(APP)  # built once: converting the app is the slow part of an invoke


@pytest.fixture(autouse=True)
def _reuse_command_tree(monkeypatch):
    monkeypatch.setattr(
        typer.testing, "_get_command", lambda app: ROOT if app is APP else typer.main.get_command(app)
    )


def invoke(*args: str, input: str | None = None):
    return runner.invoke(APP, list(args), input=input)


@pytest.fixture
def runs(rerankctl_home):
    """Two finished SFT runs differing in lr, and a failed reward run."""
    with RunStore.open() as store:
        made = {}
        for name, lr in (("base", 1e-4), ("fast", 3e-4)):
            with store.create_run(
                kind="sft", name=name, config={"lr": lr, "lora": {"r": 8, "alpha": 16}, "seed": 1},
                output_dir=f"/out/{name}", tags=["exp1"],
            ) as w:  # fmt: skip
                for step in range(1, 5):
                    w.log_metrics(
                        step * 10, {"loss": 1.0 / step + (0.5 if name == "fast" else 0.0), "lr": lr}
                    )
                w.log_metrics(40, {"eval_ndcg@10": 0.6 if name == "base" else 0.7})
                w.log_artifact("checkpoint", f"/out/{name}/checkpoint-20", step=20)
                w.log_artifact("final", f"/out/{name}/final", step=40)
                w.log_event("training done", step=40)
                w.log_eval("T2Reranking", "ndcg@10", 0.66, model=f"/out/{name}/final")
                w.set_summary({"best": {"ndcg": 0.6}})
                made[name] = w.id
        w = store.create_run(kind="reward", name="rm", config={"lr": 1e-5, "extra": True})
        w.log_metrics(1, {"accuracy": 0.5})
        w.finish("failed", error="CUDA out of memory")
        made["rm"] = w.id
    return made


def test_ls_json(runs):
    result = invoke("runs", "ls", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["name"] for r in data] == ["rm", "fast", "base"]
    base = data[2]
    assert (base["id"], base["kind"], base["status"], base["step"], base["last_loss"]) == (
        runs["base"], "sft", "completed", 40, 0.25,
    )  # fmt: skip
    assert data[1]["last_loss"] == 0.75 and data[0]["last_loss"] is None
    assert base["config"]["lora"] == {"r": 8, "alpha": 16} and base["tags"] == ["exp1"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--kind", "sft"], ["fast", "base"]),
        (["--status", "failed"], ["rm"]),
        (["--tag", "exp1", "--limit", "1"], ["fast"]),
        (["--kind", "rl"], []),
    ],
)
def test_ls_filters(runs, args, names):
    result = invoke("runs", "ls", "--json", *args)
    assert [r["name"] for r in json.loads(result.stdout)] == names


def test_ls_table(runs):
    result = invoke("runs", "ls")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    base_line = next(line for line in lines if " base " in line)
    for cell in (runs["base"], "sft", "completed", "40", "0.25"):
        assert cell in base_line
    assert "failed" in next(line for line in lines if " rm " in line)


def test_ls_empty(rerankctl_home):
    assert invoke("runs", "ls").stdout.strip() == "no runs yet"
    assert json.loads(invoke("runs", "ls", "--json").stdout) == []
    assert invoke("runs", "ls", "--kind", "x").stdout.strip() == "no runs match these filters"


def test_show_json(runs):
    result = invoke("runs", "show", "base", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run"]["id"] == runs["base"]
    assert data["latest_metrics"] == {
        "eval_ndcg@10": {"step": 40, "value": 0.6},
        "loss": {"step": 40, "value": 0.25},
        "lr": {"step": 40, "value": 1e-4},
    }
    assert [(a["kind"], a["path"]) for a in data["artifacts"]] == [
        ("checkpoint", "/out/base/checkpoint-20"),
        ("final", "/out/base/final"),
    ]
    assert [e["message"] for e in data["events"]] == ["training done"]
    assert data["evals"][0]["value"] == 0.66


def test_show_table_by_id_prefix(runs):
    result = invoke("runs", "show", runs["rm"][:6])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "rm" in text and "failed" in text and "CUDA out of memory" in text
    assert "accuracy" in text and "extra" in text


def test_show_table_lists_sections(runs):
    text = invoke("runs", "show", "fast").stdout
    assert "RL updates" not in text  # only RL runs get that table
    for part in (
        "config",
        "lora.alpha",
        "latest metrics",
        "0.75",
        "artifacts",
        "/out/fast/final",
        "training done",
    ):
        assert part in text, part


def test_unknown_run_is_a_not_found_error(runs):
    result = invoke("runs", "show", "nope")
    assert isinstance(result.exception, NotFoundError)


def test_compare_json(runs):
    result = invoke("runs", "compare", "base", "fast", "rm", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["runs"]] == ["base", "fast", "rm"]
    assert data["config"] == {
        "extra": [None, None, True],
        "lora.alpha": [16, 16, None],
        "lora.r": [8, 8, None],
        "lr": [1e-4, 3e-4, 1e-5],
        "seed": [1, 1, None],
    }
    assert data["metrics"]["loss"] == [{"step": 40, "value": 0.25}, {"step": 40, "value": 0.75}, None]
    assert data["metrics"]["accuracy"] == [None, None, {"step": 1, "value": 0.5}]


def test_compare_two_runs_shows_only_differences(runs):
    data = json.loads(invoke("runs", "compare", "base", "fast", "--json").stdout)
    assert data["config"] == {"lr": [1e-4, 3e-4]}
    everything = json.loads(invoke("runs", "compare", "base", "fast", "--json", "--all").stdout)
    assert set(everything["config"]) == {"lr", "lora.r", "lora.alpha", "seed"}
    text = invoke("runs", "compare", "base", "fast").stdout
    assert "config differences" in text and "0.0003" in text and "0.75 @40" in text


def test_compare_needs_two_runs(runs):
    assert isinstance(invoke("runs", "compare", "base").exception, UsageError)


def test_plot_terminal(runs):
    result = invoke("runs", "plot", "base", "-m", "loss", "--width", "60", "--height", "15")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 15
    assert "\x1b[" not in result.stdout  # no colour codes when not writing to a terminal
    assert "▞▞ loss" in lines[2]  # the legend
    assert "step" in lines[-1] and "1.00" in result.stdout and "0.25" in result.stdout


def test_plot_defaults_to_loss_and_rejects_unknown_metrics(runs):
    assert invoke("runs", "plot", "base", "fast").exit_code == 0
    result = invoke("runs", "plot", "rm")  # no loss logged
    assert isinstance(result.exception, NotFoundError)
    assert "accuracy" in result.exception.hint
    result = invoke("runs", "plot", "base", "-m", "loss", "-m", "nope")
    assert result.exit_code == 0 and "no metric 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("suffix", "magic"), [(".png", b"\x89PNG\r\n"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_plot_image(runs, tmp_path, suffix, magic):
    target = tmp_path / "plots" / f"curve{suffix}"
    result = invoke("runs", "plot", "base", "fast", "-m", "loss", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(magic)
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_plot_image_bad_suffix_and_missing_matplotlib(runs, tmp_path, monkeypatch):
    result = invoke("runs", "plot", "base", "-o", str(tmp_path / "x.gif"))
    assert isinstance(result.exception, UsageError)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    result = invoke("runs", "plot", "base", "-o", str(tmp_path / "x.png"))
    assert isinstance(result.exception, DependencyError)
    assert "rerankctl[plot]" in result.exception.hint
    assert not (tmp_path / "x.png").exists()


def test_export_csv_long_and_wide(runs, tmp_path):
    result = invoke("runs", "export", "base")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 9  # 4 steps x (loss, lr) + eval
    assert (rows[0]["step"], rows[0]["key"], float(rows[0]["value"])) == ("10", "loss", 1.0)
    wide = list(csv.reader(io.StringIO(invoke("runs", "export", "base", "--wide").stdout)))
    assert wide[0] == ["step", "eval_ndcg@10", "loss", "lr"]
    assert wide[1] == ["10", "", "1.0", "0.0001"]
    assert wide[4] == ["40", "0.6", "0.25", "0.0001"]
    target = tmp_path / "base.csv"
    result = invoke("runs", "export", "base", "-o", str(target))
    assert result.exit_code == 0 and "wrote 9 rows" in result.stderr
    assert target.read_text() == invoke("runs", "export", "base").stdout


def test_export_json(runs, tmp_path):
    target = tmp_path / "out" / "fast.json"
    assert invoke("runs", "export", "fast", "--format", "json", "-o", str(target)).exit_code == 0
    doc = json.loads(target.read_text())
    assert doc["run"]["name"] == "fast"
    assert len(doc["metrics"]) == 9
    assert doc["metrics"][-1] == {**doc["metrics"][-1], "step": 40, "key": "eval_ndcg@10", "value": 0.7}
    assert [a["kind"] for a in doc["artifacts"]] == ["checkpoint", "final"]
    assert doc["evals"][0]["dataset"] == "T2Reranking"
    assert invoke("runs", "export", "fast", "--format", "xml").exit_code == 2


def test_tag_and_remove(runs):
    result = invoke("runs", "tag", "base", "good", "lr-sweep")
    assert result.stdout.strip() == "base: exp1, good, lr-sweep"
    assert invoke("runs", "tag", "base", "exp1", "good", "--remove").stdout.strip() == "base: lr-sweep"
    assert [r["name"] for r in json.loads(invoke("runs", "ls", "--json", "--tag", "lr-sweep").stdout)] == [
        "base"
    ]


def test_rm_asks_and_deletes(runs):
    result = invoke("runs", "rm", "base", input="n\n")
    assert result.exit_code == 1  # aborted
    assert len(json.loads(invoke("runs", "ls", "--json").stdout)) == 3
    result = invoke("runs", "rm", "base", "rm", input="y\n")
    assert result.exit_code == 0, result.output
    assert "deleted base" in result.stdout and "files kept in /out/base" in result.stdout
    assert [r["name"] for r in json.loads(invoke("runs", "ls", "--json").stdout)] == ["fast"]
    assert invoke("runs", "rm", "fast", "--yes").exit_code == 0
    assert json.loads(invoke("runs", "ls", "--json").stdout) == []


def test_rm_refuses_a_live_run(rerankctl_home):
    with RunStore.open() as store:
        w = store.create_run(kind="sft", name="live")
    result = invoke("runs", "rm", "live", "--yes")
    assert isinstance(result.exception, UsageError) and "still running" in result.exception.message
    assert invoke("runs", "rm", "live", "--yes", "--force").exit_code == 0
    w.finish()


def test_errors_from_the_real_entry_point(runs):
    """Through `python -m rerankctl`: one line on stderr, exit 2 for an unknown run."""
    proc = subprocess.run(
        [sys.executable, "-m", "rerankctl", "runs", "show", "does-not-exist"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: no run with id, id prefix or name 'does-not-exist' (hint: see `rerankctl runs ls`)"
    ]


def test_home_option_selects_the_store(runs, tmp_path):
    other = tmp_path / "elsewhere"
    result = invoke("--home", str(other), "runs", "ls", "--json")
    assert json.loads(result.stdout) == []
    assert (other / "runs.db").exists()


def test_user_text_is_never_rich_markup(rerankctl_home):
    with RunStore.open() as store:
        w = store.create_run(kind="sft", name="[bold]odd[/bold]", config={"note": "[red]x[/red]"})
        w.finish("failed", error="bad [value]")
        other = store.create_run(kind="sft", name="plain", config={"note": "y"})
        other.finish()
    text = invoke("runs", "show", w.id).stdout
    assert "[bold]odd[/bold]" in text and "[red]x[/red]" in text and "bad [value]" in text
    text = invoke("runs", "compare", w.id, "plain").stdout
    assert "[bold]odd[/bold]" in text and "[red]x[/red]" in text
    assert "[bold]odd[/bold]" in invoke("runs", "ls").stdout


def test_show_of_an_rl_run_summarises_clip_ratio_reward_kl_and_entropy(rerankctl_home):
    logged = [
        {"loss": 0.1, "clip_fraction": 0.0, "ratio_mean": 1.0, "ratio_min": 1.0, "ratio_max": 1.0},
        {"loss": 0.2, "clip_fraction": 0.25, "ratio_mean": 1.02, "ratio_min": 0.7, "ratio_max": 1.4},
        {"loss": 0.3, "clip_fraction": 0.125, "ratio_mean": 0.99, "ratio_min": 0.85, "ratio_max": 1.2},
    ]
    with RunStore.open() as store:
        with store.create_run(kind="rl", name="grpo", config={"loss_type": "grpo"}) as w:
            for i, stats in enumerate(logged):
                more = {"reward_mean": 0.5 + 0.1 * i, "kl": 0.01 * i, "entropy": 2.0 - 0.5 * i}
                w.log_metrics(10 * (i + 1), {**stats, **more})
    data = json.loads(invoke("runs", "show", "grpo", "--json").stdout)["rl_stats"]
    assert list(data) == [
        "clip_fraction",
        "ratio_mean",
        "ratio_min",
        "ratio_max",
        "reward_mean",
        "kl",
        "entropy",
    ]
    assert data["clip_fraction"] == {
        "step": 30, "last": 0.125, "mean": pytest.approx(0.125), "min": 0.0, "max": 0.25, "count": 3,
    }  # fmt: skip
    assert data["ratio_min"]["min"] == 0.7 and data["ratio_max"]["max"] == 1.4
    assert data["reward_mean"]["last"] == pytest.approx(0.7) and data["entropy"]["min"] == 1.0
    text = invoke("runs", "show", "grpo").stdout
    table = text[text.index("RL updates") :].splitlines()  # after the "latest metrics" table
    row = next(line for line in table if "clip_fraction" in line)
    for cell in ("30", "0.125", "0.25"):
        assert cell in row, cell
    assert "1.4" in next(line for line in table if "ratio_max" in line)
