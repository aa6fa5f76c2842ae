"""The FastAPI app: ``/rerank`` (also ``/v1/rerank``, ``/v2/rerank``), health, models, metrics.

Every request error is a 4xx with a JSON body ``{"message", "type", "code"}``: bad JSON 400,
missing key 401, unknown route 404, too many or too long documents 413, a request of the
wrong shape 422, a full queue 503 with ``Retry-After``. The rerank routes read and validate the
body themselves (any content type, JSON errors with their position); the OpenAPI schema still
documents the request model.
"""

import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from rerankctl.serve.backends import ScoringBackend

RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
KNOWN_ROUTES = (*RERANK_PATHS, "/tokenize", "/health", "/v1/models", "/metrics")


@dataclass
class ServeSettings:
    """Limits and batching of one server (the ``rerankctl serve`` flags)."""

    model_name: str | None = None
    api_key: str | None = None
    instruction: str | None = None
    max_docs: int = 1000
    max_query_chars: int = 20_000
    max_doc_chars: int = 100_000
    max_body_bytes: int = 64 * 1024 * 1024
    max_batch_tokens: int = 16384
    max_batch_size: int = 64
    max_gather_tokens: int = 131072
    max_wait_ms: float = 5.0
    max_queue_docs: int = 20_000
    batching: bool = True
    retry_after_s: int = 1


class APIError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request", headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.headers = status, message, type_, headers


def _error(status: int, message: str, type_: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(
        {"message": message, "type": type_, "code": status}, status_code=status, headers=headers
    )


class _MetricsMiddleware:
    """Pure ASGI middleware: in-flight gauge, request counts by route/status, latency histogram."""

    def __init__(self, app, metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        path = scope.get("path", "")
        route = path if path in KNOWN_ROUTES else "other"

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.request_started()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.request_finished(route, status, time.perf_counter() - start)


def create_app(backend: ScoringBackend, settings: ServeSettings | None = None):
    """Build the app around a loaded backend; the batcher starts and stops with the app's lifespan."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from rerankctl import __version__
    from rerankctl.serve.batcher import Batcher, Closing, QueueFull
    from rerankctl.serve.metrics import CONTENT_TYPE, ServerMetrics
    from rerankctl.serve.schemas import (
        ErrorResponse,
        RerankRequest,
        RerankResponse,
        TokenizeResponse,
        build_response,
        describe_validation_error,
    )

    settings = settings or ServeSettings()
    model_name = settings.model_name or backend.name
    metrics = ServerMetrics()
    batcher = Batcher(
        backend,
        max_batch_tokens=settings.max_batch_tokens,
        max_batch_size=settings.max_batch_size,
        max_gather_tokens=settings.max_gather_tokens,
        max_wait_ms=settings.max_wait_ms,
        max_queue_docs=max(settings.max_queue_docs, settings.max_docs),
        batching=settings.batching,
        metrics=metrics,
    )

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        try:
            yield
        finally:
            # uvicorn has already let in-flight requests finish; score anything still queued, then stop.
            await batcher.close(timeout=60)

    app = FastAPI(
        title="rerankctl rerank API",
        version=__version__,
        lifespan=lifespan,
        description="Cohere/Jina/vLLM/TEI-compatible rerank endpoint serving a rerankctl model.",
    )
    app.state.batcher, app.state.metrics, app.state.settings = batcher, metrics, settings
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    bearer = HTTPBearer(auto_error=False, description="Needed when the server runs with --api-key.")
    error_responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 503)
    }

    def require_key(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if settings.api_key is None:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        if creds is None:
            raise APIError(
                401, "missing API key: send 'Authorization: Bearer <key>'", "authentication_error", challenge
            )
        if not hmac.compare_digest(creds.credentials.encode(), settings.api_key.encode()):
            raise APIError(401, "invalid API key", "authentication_error", challenge)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return _error(exc.status, exc.message, exc.type, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        kind = "not_found" if exc.status_code == 404 else "invalid_request"
        return _error(exc.status_code, str(exc.detail), kind, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return _error(422, describe_validation_error(list(exc.errors())), "invalid_request")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        return _error(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")

    async def read_body(request: Request) -> bytes:
        """The body, refused with 413 as soon as it passes max_body_bytes (declared or streamed)."""
        limit = settings.max_body_bytes
        too_large = APIError(413, f"request body is over {limit} bytes", "request_too_large")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def parse(request: Request) -> RerankRequest:
        body = await read_body(request)
        if not body.strip():
            raise APIError(400, "empty request body: send a JSON object with 'query' and 'documents'")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise APIError(400, f"request body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise APIError(422, f"request body must be a JSON object, not {type(payload).__name__}")
        try:
            req = RerankRequest.model_validate(payload)
        except ValidationError as exc:
            raise APIError(422, describe_validation_error(exc)) from exc
        check_limits(req)
        return req

    def check_limits(req: RerankRequest) -> None:
        docs = req.document_texts()
        if not docs:
            raise APIError(422, "field 'documents': must hold at least one document")
        if len(docs) > settings.max_docs:
            raise APIError(
                413, f"too many documents: {len(docs)} > {settings.max_docs} per request", "request_too_large"
            )
        if not req.query.strip():
            raise APIError(422, "field 'query': must not be empty")
        if len(req.query) > settings.max_query_chars:
            raise APIError(
                413,
                f"field 'query': {len(req.query)} characters > {settings.max_query_chars}",
                "request_too_large",
            )
        for i, doc in enumerate(docs):
            if len(doc) > settings.max_doc_chars:
                raise APIError(
                    413,
                    f"field 'documents.{i}': {len(doc)} characters > {settings.max_doc_chars}",
                    "request_too_large",
                )

    async def score(req: RerankRequest):
        docs = req.document_texts()
        instruction = req.instruction or settings.instruction
        try:
            return docs, await batcher.submit([req.query] * len(docs), docs, instruction)
        except QueueFull as exc:
            raise APIError(
                503, f"server busy: {exc}", "overloaded", {"Retry-After": str(settings.retry_after_s)}
            ) from exc
        except Closing as exc:
            raise APIError(
                503, str(exc), "unavailable", {"Retry-After": str(settings.retry_after_s)}
            ) from exc

    request_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RerankRequest"}}},
        }
    }

    async def rerank(request: Request) -> JSONResponse:
        req = await parse(request)
        docs, scored = await score(req)
        body = build_response(
            f"rerank-{uuid.uuid4().hex}",
            model_name,
            docs,
            scored.scores,
            scored.tokens,
            req.limit(),
            req.wants_documents(),
        )
        metrics.observe_documents(len(docs), sum(scored.tokens))
        return JSONResponse(body)

    for path in RERANK_PATHS:
        app.add_api_route(
            path,
            rerank,
            methods=["POST"],
            dependencies=[Depends(require_key)],
            openapi_extra=request_body,
            responses={200: {"model": RerankResponse}, **error_responses},
            summary="Rerank documents for a query",
            name=f"rerank{path.replace('/', '_')}",
        )

    @app.post(
        "/tokenize",
        dependencies=[Depends(require_key)],
        openapi_extra=request_body,
        responses={200: {"model": TokenizeResponse}, **error_responses},
    )
    async def tokenize(request: Request) -> JSONResponse:
        """Prompt tokens each document of a rerank request would use (after truncation)."""
        req = await parse(request)
        docs = req.document_texts()
        counts = await batcher.count_tokens(
            [req.query] * len(docs), docs, req.instruction or settings.instruction
        )
        return JSONResponse({"model": model_name, "tokens": list(counts), "max_length": backend.max_length})

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness and load: 200 while serving, 503 while shutting down."""
        closing = batcher.closing
        return JSONResponse(
            {
                "status": "shutting_down" if closing else "ok",
                "model": model_name,
                "queued_documents": batcher.pending_docs,
                "max_length": backend.max_length,
            },
            status_code=503 if closing else 200,
        )

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models() -> JSONResponse:
        """The served model, OpenAI list style."""
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": model_name,
                        "object": "model",
                        "created": int(app.state.started),
                        "owned_by": "rerankctl",
                        "max_model_len": backend.max_length,
                    }
                ],
            }
        )

    @app.get("/metrics", dependencies=[Depends(require_key)], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        """Prometheus text format: requests, latency, batch sizes, documents/s, queue depth."""
        text = metrics.render(
            {
                "rerankctl_queue_documents": (
                    "Documents admitted and not yet answered.",
                    batcher.pending_docs,
                ),
                "rerankctl_queue_jobs": ("Requests waiting for the scoring thread.", batcher.queued_jobs),
            }
        )
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    app.state.started = time.time()
    _add_request_schema(app)
    return app


def _add_request_schema(app) -> None:
    """Publish RerankRequest in the OpenAPI components (the routes parse the body themselves)."""
    from rerankctl.serve.schemas import RerankRequest

    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        defs = RerankRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, sub in defs.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components["RerankRequest"] = defs
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
