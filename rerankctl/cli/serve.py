"""`rerankctl serve`: serve a reranker over HTTP (Cohere/Jina/vLLM/TEI-compatible /rerank API).

Only Typer and the standard library are imported here; the model, FastAPI and uvicorn load
when the command runs.
"""

from __future__ import annotations

import os
import sys

import typer

DOC = """Serve a reranker over HTTP (Cohere/Jina/vLLM/TEI-compatible /rerank API).

POST /rerank, /v1/rerank, /v2/rerank, /tokenize; GET /health, /v1/models, /metrics, /docs.
"""


def serve(cfg) -> None:  # type: ignore[no-untyped-def]
    """Check the limits, bind the port, load the model, serve until SIGTERM/SIGINT."""
    from rerankctl.errors import UsageError
    from rerankctl.serve.app import ServeSettings, create_app
    from rerankctl.serve.backends import load_backend
    from rerankctl.serve.runner import bind_socket, is_loopback, serve_forever

    for name, value in (
        ("--max-batch-tokens", cfg.max_batch_tokens),
        ("--max-batch-size", cfg.max_batch_size),
        ("--max-gather-tokens", cfg.max_gather_tokens),
        ("--max-docs", cfg.max_docs),
        ("--max-doc-chars", cfg.max_doc_chars),
        ("--max-query-chars", cfg.max_query_chars),
        ("--max-length", cfg.max_length),
    ):
        if value < 1:
            raise UsageError(f"{name} must be at least 1 (got {value})")
    if cfg.max_queue_docs < cfg.max_docs:
        raise UsageError(
            f"--max-queue-docs {cfg.max_queue_docs} is lower than --max-docs {cfg.max_docs}:"
            " a full-size request could never be admitted",
            hint=f"use --max-queue-docs {cfg.max_docs} or more, or a lower --max-docs",
        )
    if cfg.cpu_threads is not None and cfg.cpu_threads < 1:
        raise UsageError(f"--cpu-threads must be at least 1 (got {cfg.cpu_threads})")
    if cfg.max_wait_ms < 0:
        raise UsageError(f"--max-wait-ms must not be negative (got {cfg.max_wait_ms:g})")
    from rerankctl.config.preflight import resolve_local
    from rerankctl.models.quantize import check_quantize

    model = cfg.model
    if cfg.backend != "noop":
        # runs/my-run/final from any directory (also looked up under $RERANKCTL_HOME); a missing
        # directory is the backend's own one-line error, before anything loads
        found = resolve_local(model)
        model = str(found) if found is not None else model
    quant = check_quantize(cfg.quantize, cfg.device)
    if quant and cfg.backend != "torch":
        raise UsageError(f"--quantize {quant} needs --backend torch (got {cfg.backend})")
    # Bind first: a port in use fails fast, before minutes of model loading.
    sock = bind_socket(cfg.host, cfg.port)
    if not is_loopback(cfg.host) and not cfg.api_key:
        print(
            f"warning: serving on {cfg.host} without --api-key: anyone who can reach this port can use it",
            file=sys.stderr,
        )
    if cfg.cpu_threads is not None:
        import torch

        torch.set_num_threads(cfg.cpu_threads)
    import time

    # Loading takes from seconds to minutes: say so, on stderr, so a log shows what the server waits on.
    started = time.monotonic()
    print(f"rerankctl serve: loading {model} (backend {cfg.backend}) ...", file=sys.stderr, flush=True)
    scorer = load_backend(
        model,
        backend=cfg.backend,
        device=cfg.device,
        dtype=cfg.dtype,
        max_length=cfg.max_length,
        instruction=cfg.instruction,
        quantize=quant,
        shared_prefix=cfg.shared_prefix,
    )
    print(f"rerankctl serve: model loaded in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    limits = ("max_docs", "max_doc_chars", "max_query_chars", "max_batch_tokens", "max_batch_size",
              "max_gather_tokens", "max_wait_ms", "max_queue_docs", "batching", "instruction")  # fmt: skip
    settings = ServeSettings(
        model_name=cfg.served_model_name, api_key=cfg.api_key or None, **cfg.model_dump(include=set(limits))
    )
    app = create_app(scorer, settings)
    bound_host, bound_port = sock.getsockname()[:2]
    print(
        f"rerankctl serve: listening on http://{bound_host}:{bound_port} (model {settings.model_name or scorer.name},"
        f" backend {cfg.backend}, pid {os.getpid()})",
        flush=True,
    )
    serve_forever(app, sock, log_level=cfg.log_level, graceful_timeout=cfg.graceful_timeout)


def register(app: typer.Typer) -> None:
    from rerankctl.cli._options import register_config_command
    from rerankctl.config.serve import ServeConfig

    register_config_command(app, "serve", ServeConfig, command="serve", run=serve, doc=DOC, ranges=True)
