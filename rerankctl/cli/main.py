"""The console-script entry point: runs the Typer app and turns errors into one line."""

from __future__ import annotations

import os
import sys

from rerankctl.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, RerankctlError, Terminated


def debug_enabled() -> bool:
    return os.environ.get("RERANKCTL_DEBUG", "") not in ("", "0", "false", "False")


def report_error(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr and return the exit code to use."""
    if isinstance(exc, RerankctlError):
        line = f"error: {exc.message}"
        if exc.hint:
            line += f" (hint: {exc.hint})"
        code = exc.exit_code
    else:
        line = f"error: {type(exc).__name__}: {exc} (hint: rerun with RERANKCTL_DEBUG=1 for the traceback)"
        code = EXIT_RUNTIME
    print(line.replace("\n", " "), file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> None:
    from rerankctl.cli.app import build_app

    app = build_app()
    try:
        app(args=argv, prog_name="rerankctl")
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        # A training says how to continue (Interrupted.message); anything else just stops.
        if not getattr(exc, "printed", False):
            print(getattr(exc, "message", None) or "interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated as exc:
        print(exc.message, file=sys.stderr)
        sys.exit(128 + exc.signum)
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into a message
        if debug_enabled():
            raise
        sys.exit(report_error(exc))
