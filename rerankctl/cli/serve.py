"""`rerankctl serve`: serve a reranker over HTTP (Cohere/Jina/vLLM/TEI-compatible /rerank API).

Only Typer and the standard library are imported here; the model, FastAPI and uvicorn load
when the command runs.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from rerankctl.data.limits import DEFAULT_MAX_CHARS

API_KEY_ENV = "RERANKCTL_API_KEY"


def serve(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Model directory: causal-LM reranker, PEFT adapter, "
            "exported seq-cls model or CrossEncoder (any name with --backend noop).",
        ),
    ],
    port: Annotated[int, typer.Option(help="TCP port (0: any free port, printed at start).")] = 9997,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")] = (
        "127.0.0.1"
    ),
    backend: Annotated[
        str,
        typer.Option(
            help="torch (in-process), vllm (GPU + vLLM), or noop (no model: "
            "for testing clients and the HTTP layer)."
        ),
    ] = "torch",
    device: Annotated[
        str | None, typer.Option(help="cuda, cuda:1, cpu (default: first GPU, else CPU).")
    ] = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32.")] = "auto",
    max_length: Annotated[int, typer.Option(help="Prompt token limit; longer documents are cut.")] = 1024,
    quantize: Annotated[
        str,
        typer.Option(
            "--quantize",
            help="none, or int8: dynamic int8 linear layers (CPU, ~2x faster; scores drift: check with eval parity).",
        ),
    ] = "none",
    max_batch_tokens: Annotated[
        int, typer.Option(help="Prompt tokens per scoring batch (padded, per forward pass).")
    ] = 16384,
    max_batch_size: Annotated[
        int, typer.Option(help="Pairs per forward pass at most (raise on a large GPU).")
    ] = 64,
    max_gather_tokens: Annotated[
        int,
        typer.Option(
            help="Prompt tokens taken from the queue at once, sorted by length and cut into forward passes "
            "(more: less padding, later answers)."
        ),
    ] = 131072,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a request waits for others to share its batch.")
    ] = 5.0,
    batching: Annotated[
        bool,
        typer.Option(
            "--batching/--no-batching",
            help="Batch concurrent requests together (off: one batch per request).",
        ),
    ] = True,
    max_docs: Annotated[int, typer.Option(help="Documents per request at most (more: 413).")] = 1000,
    max_doc_chars: Annotated[
        int, typer.Option(help="Characters per document at most (more: 413).")
    ] = DEFAULT_MAX_CHARS,
    max_query_chars: Annotated[int, typer.Option(help="Characters per query at most (more: 413).")] = 20_000,
    max_queue_docs: Annotated[
        int,
        typer.Option(
            help="Documents queued at once before answering 503 (at least --max-docs, else an error)."
        ),
    ] = 20_000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            show_envvar=True,
            help="Require 'Authorization: Bearer KEY' on every route but /health, /docs and /openapi.json.",
        ),
    ] = None,
    instruction: Annotated[
        str | None, typer.Option(help="Default instruction for requests that give none.")
    ] = None,
    served_model_name: Annotated[
        str | None, typer.Option(help="Name reported in responses and /v1/models (default: --model).")
    ] = None,
    cpu_threads: Annotated[
        int | None,
        typer.Option(help="torch CPU threads for scoring (default: torch's choice; 1 suits a busy machine)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    graceful_timeout: Annotated[
        float, typer.Option(help="Seconds to let in-flight requests finish on shutdown.")
    ] = 30.0,
) -> None:
    """Serve a reranker: POST /rerank, /v1/rerank, /v2/rerank, /tokenize; GET /health, /v1/models, /metrics, /docs."""
    from rerankctl.errors import UsageError
    from rerankctl.serve.app import ServeSettings, create_app
    from rerankctl.serve.backends import load_backend
    from rerankctl.serve.runner import bind_socket, is_loopback, serve_forever

    for name, value in (
        ("--max-batch-tokens", max_batch_tokens),
        ("--max-batch-size", max_batch_size),
        ("--max-gather-tokens", max_gather_tokens),
        ("--max-docs", max_docs),
        ("--max-doc-chars", max_doc_chars),
        ("--max-query-chars", max_query_chars),
        ("--max-length", max_length),
    ):
        if value < 1:
            raise UsageError(f"{name} must be at least 1 (got {value})")
    if max_queue_docs < max_docs:
        raise UsageError(
            f"--max-queue-docs {max_queue_docs} is lower than --max-docs {max_docs}:"
            " a full-size request could never be admitted",
            hint=f"use --max-queue-docs {max_docs} or more, or a lower --max-docs",
        )
    if cpu_threads is not None and cpu_threads < 1:
        raise UsageError(f"--cpu-threads must be at least 1 (got {cpu_threads})")
    if max_wait_ms < 0:
        raise UsageError(f"--max-wait-ms must not be negative (got {max_wait_ms:g})")
    from rerankctl.config.preflight import resolve_local
    from rerankctl.models.quantize import check_quantize

    if backend != "noop":
        # runs/my-run/final from any directory (also looked up under $RERANKCTL_HOME); a missing
        # directory is the backend's own one-line error, before anything loads
        found = resolve_local(model)
        model = str(found) if found is not None else model
    quant = check_quantize(quantize, device)
    if quant and backend != "torch":
        raise UsageError(f"--quantize {quant} needs --backend torch (got {backend})")
    # Bind first: a port in use fails fast, before minutes of model loading.
    sock = bind_socket(host, port)
    if not is_loopback(host) and not api_key:
        print(
            f"warning: serving on {host} without --api-key: anyone who can reach this port can use it",
            file=sys.stderr,
        )
    if cpu_threads is not None:
        import torch

        torch.set_num_threads(cpu_threads)
    import time

    # Loading takes from seconds to minutes: say so, on stderr, so a log shows what the server waits on.
    started = time.monotonic()
    print(f"rerankctl serve: loading {model} (backend {backend}) ...", file=sys.stderr, flush=True)
    scorer = load_backend(
        model,
        backend=backend,
        device=device,
        dtype=dtype,
        max_length=max_length,
        instruction=instruction,
        quantize=quant,
    )
    print(f"rerankctl serve: model loaded in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    settings = ServeSettings(
        model_name=served_model_name,
        api_key=api_key or None,
        instruction=instruction,
        max_docs=max_docs,
        max_doc_chars=max_doc_chars,
        max_query_chars=max_query_chars,
        max_batch_tokens=max_batch_tokens,
        max_batch_size=max_batch_size,
        max_gather_tokens=max_gather_tokens,
        max_wait_ms=max_wait_ms,
        max_queue_docs=max_queue_docs,
        batching=batching,
    )
    app = create_app(scorer, settings)
    bound_host, bound_port = sock.getsockname()[:2]
    print(
        f"rerankctl serve: listening on http://{bound_host}:{bound_port} (model {settings.model_name or scorer.name},"
        f" backend {backend}, pid {os.getpid()})",
        flush=True,
    )
    serve_forever(app, sock, log_level=log_level, graceful_timeout=graceful_timeout)


def register(app: typer.Typer) -> None:
    app.command("serve", help="Serve a reranker over HTTP (Cohere/Jina/vLLM/TEI-compatible /rerank API).")(
        serve
    )
