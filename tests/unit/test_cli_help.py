"""`--help` works for every command and subcommand of the app (including ones added later)."""

from __future__ import annotations

import pytest
import typer
import typer.testing
from typer.testing import CliRunner

from rerankctl.cli.app import build_app

runner = CliRunner()
APP = build_app()
# Converting the Typer app into its click command tree is the slow part of an invoke;
# the tree is the same for every test here, so build it once.
ROOT = typer.main.get_command(APP).load_all()


@pytest.fixture(autouse=True)
def _reuse_command_tree(monkeypatch):
    monkeypatch.setattr(
        typer.testing, "_get_command", lambda app: ROOT if app is APP else typer.main.get_command(app)
    )


def _command_paths() -> list[tuple[str, ...]]:
    """Every command path of the app: (), ("runs",), ("runs", "ls"), ..."""
    paths: list[tuple[str, ...]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(ROOT, ())
    return paths


def _command(path: tuple[str, ...]):
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]
    return cmd


PATHS = _command_paths()


def test_the_tree_has_the_runs_group():
    assert {("runs", name) for name in ("ls", "show", "compare", "plot", "export", "rm", "tag")} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "rerankctl")
def test_help(path):
    result = runner.invoke(APP, [*path, "--help"], prog_name="rerankctl")
    assert result.exit_code == 0, result.output
    assert "Usage: rerankctl" in result.stdout
    assert " ".join(("rerankctl", *path)) in result.stdout


@pytest.mark.parametrize("path", [p for p in PATHS if p], ids=lambda p: " ".join(p))
def test_every_command_says_what_it_does(path):
    cmd = _command(path)
    assert (cmd.help or cmd.short_help or "").strip(), f"`rerankctl {' '.join(path)}` has no help text"


def test_root_help_lists_groups_without_loading_them():
    """The lazy root lists each group from its table; the one line must match the group's own help."""
    from rerankctl.cli.app import GROUPS

    fresh = typer.main.get_command(build_app())
    result = runner.invoke(build_app(), ["--help"], prog_name="rerankctl")
    assert result.exit_code == 0
    assert fresh.commands == {}
    for name, line in GROUPS.items():
        real = ROOT.commands[name]
        assert (real.help or "").strip().splitlines()[0] == line, name


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(APP, ["nope"], prog_name="rerankctl")
    assert result.exit_code == 2
