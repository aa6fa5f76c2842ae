"""Running the app under uvicorn: in the foreground (the CLI) or on a background thread (tests, benches).

The listening socket is bound here, before uvicorn starts, so that a port in use is a clear
error instead of a log line, and so that ``port=0`` (any free port) tells its caller the port.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from typing import Any

from rerankctl.errors import RerankctlError, UsageError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str = "127.0.0.1", port: int = 9997) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port; read it back with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Restarting on the same port right after a crash must work (connections in TIME_WAIT).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use",
                hint="stop the other server or pick another --port",
            ) from exc
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="check --host (an address of this machine) and --port",
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(app, sock: socket.socket, log_level: str, graceful_timeout: float | None):
    import uvicorn

    host, port = sock.getsockname()[:2]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=graceful_timeout,
        timeout_keep_alive=30,
    )


def serve_forever(
    app, sock: socket.socket, log_level: str = "info", graceful_timeout: float | None = 30
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, then the batcher drains (lifespan)."""
    import uvicorn

    server = uvicorn.Server(_config(app, sock, log_level, graceful_timeout))
    server.run(sockets=[sock])
    if not server.started:
        raise RerankctlError("the server failed to start", hint="rerun with --log-level debug to see why")


class BackgroundServer:
    """Run an app on a loopback port in a thread: ``with BackgroundServer(app) as srv: srv.url``.

    Used by tests and benchmarks (the CLI serves in the foreground). ``stop`` asks uvicorn to
    shut down gracefully and waits for the thread.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(_config(app, self.sock, log_level, 10))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="rerankctl-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RerankctlError(f"server on {self.url} did not start within {timeout:g} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class ServerProcess:
    """``rerankctl serve`` in a child process (tests and benchmarks): start, wait until ready, stop.

    Args:
        args: extra ``rerankctl serve`` arguments (``--model`` ...); ``--port`` defaults to 0 (any free port).
        log_path: file for the child's stderr (uvicorn's log); default: discarded.
        env: extra environment variables for the child.
    """

    def __init__(
        self, args: list[str], log_path: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args) if "--port" in args else [*args, "--port", "0"]
        self.log_path = log_path
        self.env = env
        self.proc: Any = None
        self.url = ""
        self._log: Any = None

    def start(self, timeout: float = 120.0) -> ServerProcess:
        import os
        import queue
        import subprocess
        import sys

        # The child writes its log for its whole life; the handle is closed in stop().
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        log = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rerankctl", "serve", *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(self.env or {})},
            text=True,
        )
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                code = self.proc.poll()
                self.stop(kill=True)
                raise RerankctlError(
                    f"rerankctl serve {' '.join(self.args)} did not start (exit code {code})"
                )
            if line and "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
        self._wait_healthy(deadline)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        import httpx

        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RerankctlError(f"{self.url}/health did not answer 200 in time")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, kill: bool = False, timeout: float = 30.0) -> int | None:
        """SIGKILL (``kill=True``) or SIGTERM (graceful), then wait; the exit code."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                return None if self.proc is None else self.proc.returncode
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                return self.proc.wait(timeout)
            except Exception:  # noqa: BLE001 - a child that ignores SIGTERM is killed
                self.proc.kill()
                return self.proc.wait(timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop(kill=True)
