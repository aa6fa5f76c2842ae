"""Errors that users see.

Domain code raises a `RerankctlError` subclass with a message and a hint; the CLI
entry point prints one line (message, then hint) to stderr and exits with the
error's `exit_code`. The traceback is shown only when ``RERANKCTL_DEBUG=1``.

Exit codes follow the convention of most Unix tools:

* 0 - success
* 1 - runtime failure (a training run crashed, a server is unreachable, ...)
* 2 - usage error or bad input (bad flag, bad preset, malformed data file)
* 130 - interrupted by Ctrl-C
* 128 + N - stopped by signal N (143 for SIGTERM, 129 for SIGHUP)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class RerankctlError(Exception):
    """Base class of every error meant for the user.

    Args:
        message: what went wrong, naming the file, line and field where there is one.
        hint: what the user can do about it (optional).
    """

    exit_code: int = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UsageError(RerankctlError):
    """A flag, option or combination of them that cannot work."""

    exit_code = EXIT_USAGE


class InputError(RerankctlError):
    """Bad input data: a file that is missing or malformed.

    Args:
        message: what is wrong.
        hint: what to do about it.
        path: the file, when there is one.
        line: 1-based line number inside ``path``, when known.
        field: the field (column, key) that is wrong, when known.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if field is not None:
            message = f"field '{field}': {message}"
        super().__init__(where + message, hint)


class ConfigError(InputError):
    """A preset or config file with an unknown key, a wrong type or a missing file."""


class DataError(InputError):
    """A data file (JSONL, Parquet, CSV) with a malformed record."""


class NotFoundError(RerankctlError):
    """A run, checkpoint, model or file that does not exist."""

    exit_code = EXIT_USAGE


class DependencyError(RerankctlError):
    """An optional dependency or hardware (GPU, bitsandbytes, vLLM) that is not present."""

    exit_code = EXIT_RUNTIME


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a command that can say how to continue (a training: ``--resume latest``).

    A KeyboardInterrupt, so code that handles Ctrl-C handles it; ``message`` is the one line
    the CLI prints instead of "interrupted".
    """

    def __init__(self, message: str, printed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.printed = printed  # already shown on stderr (the CLI must not repeat it)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (raised by the handler a training installs).

    A BaseException like KeyboardInterrupt, so ``except Exception`` in library code does not
    swallow it; the CLI exits with ``128 + signum``.
    """

    def __init__(self, signum: int, message: str | None = None) -> None:
        import signal

        self.signum = signum
        self.signame = signal.Signals(signum).name
        self.message = message or f"stopped by {self.signame}"
        super().__init__(self.message)
