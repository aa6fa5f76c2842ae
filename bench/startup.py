#!/usr/bin/env python
"""Start-up time of `rerankctl --help` (and of a bad flag's error) against a bare `python -c pass`.

    python bench/startup.py [-n 15] [--importtime]

Runs each command N times, interleaved (so background load hits both alike), and
prints a Markdown snippet: median / min / p90 wall time, and the difference to
the bare interpreter. The targets: median of `rerankctl --help` <= 0.35 s (issue 2), and
`rerankctl train sft --loss-type bogus` exiting 2 in under 1 s (issue 16: choices are checked
while the flags are parsed, before torch loads; a missing --model likewise).
``--importtime`` adds the modules that cost most, from ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.35
BAD_FLAG_TARGET_S = 1.0


def _rerankctl() -> list[str]:
    """The installed console script next to this interpreter (what users run), else `python -m`."""
    script = Path(sys.executable).parent / "rerankctl"
    if script.exists():
        return [str(script)]
    found = shutil.which("rerankctl")
    return [found] if found else [sys.executable, "-m", "rerankctl"]


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(cmd: list[str], env: dict, code: int = 0) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``cmd``.

    CPU time (user + system of the child) hardly changes with the machine's load,
    while wall time does; both are reported.
    """
    c0 = _cpu_children()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    if proc.returncode != code:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {code}")
    return time.perf_counter() - t0, _cpu_children() - c0


def _p90(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def importtime(env: dict, top: int = 15) -> list[tuple[str, float, float]]:
    """``[(top-level package, cumulative ms, self ms)]`` for `rerankctl --help`, most costly first."""
    code = "from rerankctl.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env, check=True
    )
    packages: dict[str, list[float]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|")
        pkg = name.strip().split(".")[0]
        entry = packages.setdefault(pkg, [0.0, 0.0])
        entry[1] += int(self_us) / 1000  # self time of every module of the package
        if len(name) - len(name.lstrip()) == 1:  # a top-level import (nested ones are indented more)
            entry[0] += int(cum_us) / 1000
    rows = [(pkg, cum, self_ms) for pkg, (cum, self_ms) in packages.items()]
    return sorted(rows, key=lambda r: -r[2])[:top]


def instructions(cmd: list[str], env: dict) -> int | None:
    """Instructions executed by ``cmd`` (valgrind callgrind): a figure the machine's load cannot change."""
    if shutil.which("valgrind") is None:
        return None
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    for line in proc.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="Runs per command (default 15).")
    parser.add_argument("--importtime", action="store_true", help="Also show where the import time goes.")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="Also count instructions with valgrind (slow: ~1 min each).",
    )
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="rerankctl-bench-")
    env = {**os.environ, "RERANKCTL_HOME": home}
    rk = _rerankctl()
    plain = {**env, "TYPER_USE_RICH": "0"}
    bad = {**env, "RERANKCTL_EXPECT": "2"}  # these must exit 2 (a usage/config error)
    commands = {
        "python -c pass": ([sys.executable, "-c", "pass"], env),
        "rerankctl train sft --help": ([*rk, "train", "sft", "--help"], env),
        "rerankctl train sft --loss-type bogus": ([*rk, "train", "sft", "--loss-type", "bogus"], bad),
        "rerankctl train sft --model /nope": ([*rk, "train", "sft", "--model", "/nope"], bad),
        "rerankctl --help": ([*rk, "--help"], env),
        "rerankctl runs --help": ([*rk, "runs", "--help"], env),
        "rerankctl runs ls (empty store)": ([*rk, "runs", "ls"], env),
        # Diagnosis: the same help without Typer's rich formatting (rich + markdown-it imports).
        "TYPER_USE_RICH=0 rerankctl --help": ([*rk, "--help"], plain),
    }
    for cmd, cmd_env in commands.values():  # warm the OS file cache and .pyc files first
        _time(cmd, cmd_env, int(cmd_env.get("RERANKCTL_EXPECT", 0)))
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.n):
        for name, (cmd, cmd_env) in commands.items():
            wall, cpu_s = _time(cmd, cmd_env, int(cmd_env.get("RERANKCTL_EXPECT", 0)))
            times[name].append(wall)
            cpu[name].append(cpu_s)
    shutil.rmtree(home, ignore_errors=True)

    base = statistics.median(times["python -c pass"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"### Start-up time (`bench/startup.py -n {args.n}`)\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()}; 1-min load average {load:.1f} at the end (shared machine: other jobs were running)."
    )
    print(f"Command: `{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(rk))} ...`, "
          f"{args.n} runs each, interleaved.\n")  # fmt: skip
    print("| command | median wall s | min s | p90 s | median - python | median CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, xs in times.items():
        med = statistics.median(xs)
        print(
            f"| `{name}` | {med:.3f} | {min(xs):.3f} | {_p90(xs):.3f} | {med - base:+.3f} "
            f"| {statistics.median(cpu[name]):.3f} |"
        )
    help_med = statistics.median(times["rerankctl --help"])
    verdict = "meets" if help_med <= TARGET_S else "MISSES"
    print(f"\n`rerankctl --help` median {help_med:.3f} s {verdict} the {TARGET_S} s target "
          f"({help_med / base:.1f}x a bare interpreter start).")  # fmt: skip
    bad_med = statistics.median(times["rerankctl train sft --loss-type bogus"])
    bad_verdict = "meets" if bad_med < BAD_FLAG_TARGET_S else "MISSES"
    print(f"`rerankctl train sft --loss-type bogus` (exit 2) median {bad_med:.3f} s {bad_verdict} "
          f"the {BAD_FLAG_TARGET_S} s target.")  # fmt: skip
    if args.importtime:
        print("\nWhere `rerankctl --help` spends its import time (`python -X importtime`, one run):\n")
        print("| package | self ms (all its modules) | cumulative ms (top-level imports) |")
        print("|---|---:|---:|")
        for pkg, cum, self_ms in importtime(env):
            print(f"| `{pkg}` | {self_ms:.1f} | {cum:.1f} |")
    if args.instructions:
        counts = {name: instructions(cmd, cmd_env) for name, (cmd, cmd_env) in commands.items()}
        base_n = counts["python -c pass"]
        if base_n:
            print("\nInstructions executed (`valgrind --tool=callgrind`, independent of the load):\n")
            print("| command | instructions | vs `python -c pass` |")
            print("|---|---:|---:|")
            for name, n in counts.items():
                if n:
                    print(f"| `{name}` | {n / 1e6:,.0f} M | {n / base_n:.0f}x |")
        else:
            print("\n(valgrind not available: no instruction counts)")
    return 0 if help_med <= TARGET_S and bad_med < BAD_FLAG_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
