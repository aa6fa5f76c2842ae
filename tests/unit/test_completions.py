"""Shell completion: the committed scripts are current, and they really complete in bash."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rerankctl.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_completions.py"


def test_committed_completions_are_current():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_check_detects_a_stale_file(tmp_path):
    for shell in ("bash", "zsh", "fish"):
        shutil.copy(ROOT / "completions" / f"rerankctl.{shell}", tmp_path)
    (tmp_path / "rerankctl.fish").write_text("# old\n")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--out-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "rerankctl.fish" in proc.stderr and "rerankctl.bash" not in proc.stderr


def test_zsh_script_starts_with_compdef():
    assert (ROOT / "completions" / "rerankctl.zsh").read_text().startswith("#compdef rerankctl\n")


def _bash_complete(words: str, env: dict) -> list[str]:
    """Source the committed bash script, complete ``words`` at its last word, return COMPREPLY."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    program = (
        f"source {ROOT / 'completions' / 'rerankctl.bash'}\n"
        f"COMP_WORDS=({words}{' ' if words.endswith(' ') else ''}''); COMP_CWORD={cword}\n"
        "_rerankctl_completion rerankctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_and_run_names(rerankctl_home):
    # `rerankctl` must be on PATH for the script to call back into it.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if shutil.which("rerankctl", path=env["PATH"]) is None:
        pytest.skip("the rerankctl console script is not installed next to this python")
    assert "runs" in _bash_complete("rerankctl ru", env)
    assert _bash_complete("rerankctl runs s", env) == ["show"]
    with RunStore.open() as store:
        store.create_run(kind="sft", name="exp-alpha").finish()
        store.create_run(kind="sft", name="exp-beta").finish()
        store.create_run(kind="rl", name="other").finish()
    assert sorted(_bash_complete("rerankctl runs show exp-", env)) == ["exp-alpha", "exp-beta"]


@pytest.mark.parametrize(
    ("shell", "extra_env", "expected"),
    [
        ("zsh", {}, '"show":"Show a run'),
        ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"}, "show\tShow a run"),
    ],
)
def test_zsh_and_fish_protocol(shell, extra_env, expected, rerankctl_home):
    """What the committed zsh/fish scripts ask `rerankctl` on <Tab> (no zsh or fish needed)."""
    script = (ROOT / "completions" / f"rerankctl.{shell}").read_text()
    assert f"_RERANKCTL_COMPLETE=complete_{shell}" in script
    env = {
        **os.environ,
        "_RERANKCTL_COMPLETE": f"complete_{shell}",
        "_TYPER_COMPLETE_ARGS": "rerankctl runs sh",
        **extra_env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "rerankctl"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


@pytest.mark.parametrize(
    ("words", "expected", "absent"),
    [
        ("rerankctl train sft --preset ti", ["tiny"], ["tiny_rl", "tiny_reward"]),
        ("rerankctl train rl --preset tiny", ["tiny_rl"], ["tiny", "tiny_reward"]),
        ("rerankctl train sft --loss-type lambda", ["lambdaloss"], []),
    ],
)
def test_preset_names_and_choices_complete_per_command(words, expected, absent, rerankctl_home):
    """After `--preset`, only that command's presets; after a choice option, its choices."""
    env = {**os.environ, "_RERANKCTL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words}
    proc = subprocess.run(
        [sys.executable, "-m", "rerankctl"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    offered = re.findall(r'"([^":]+)"', proc.stdout)  # zsh: _arguments '*: :(("tiny"))'
    for name in expected:
        assert name in offered, proc.stdout
    for name in absent:
        assert name not in offered, proc.stdout
