"""The FastAPI app: ``/rerank`` (also ``/v1/rerank``, ``/v2/rerank``), health, models, metrics.

Every request error is a 4xx with a JSON body ``{"message", "type", "code"}``: bad JSON 400,
text a tokenizer cannot take (a lone surrogate, NUL) 400 naming the field, missing key 401, unknown route 404, too many or too long documents 413, a request of the
wrong shape 422, a full queue 503 with ``Retry-After``. The rerank routes read and validate the
body themselves (any content type, JSON errors with their position); the OpenAPI schema still
documents the request model, with the limits this server enforces, so that a request valid by
the schema is accepted (checked with schemathesis). A TEI-shaped request (``texts``) gets TEI's
reply, a bare list of ``{"index", "score", "text"?}``. With an API key, every route but
``/health``, ``/docs`` and ``/openapi.json`` needs it, and only then does the schema declare the
Bearer scheme and 401. ``/docs`` is Swagger UI served from the ``swagger-ui-py`` package's files
(no CDN: it works offline).
"""

import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from rerankctl.data.limits import DEFAULT_MAX_CHARS
from rerankctl.serve.backends import ScoringBackend

RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank")
KNOWN_ROUTES = (*RERANK_PATHS, "/tokenize", "/health", "/v1/models", "/metrics", "/docs", "/openapi.json")
# Routes that stay open when the server has an API key (liveness probes and the API description).
OPEN_ROUTES = ("/health", "/docs", "/openapi.json")


@dataclass
class ServeSettings:
    """Limits and batching of one server (the ``rerankctl serve`` flags)."""

    model_name: str | None = None
    api_key: str | None = None
    instruction: str | None = None
    max_docs: int = 1000
    max_query_chars: int = 20_000
    max_doc_chars: int = DEFAULT_MAX_CHARS  # the same cap as training and eval read with
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
    from rerankctl.errors import UsageError
    from rerankctl.serve.batcher import Batcher, Closing, QueueFull
    from rerankctl.serve.metrics import CONTENT_TYPE, ServerMetrics
    from rerankctl.serve.schemas import (
        ErrorResponse,
        RerankRequest,
        RerankResponse,
        TEIResult,
        TokenizeResponse,
        bad_character,
        build_response,
        build_tei_response,
        describe_validation_error,
    )

    settings = settings or ServeSettings()
    if settings.max_queue_docs < settings.max_docs:
        raise UsageError(
            f"--max-queue-docs {settings.max_queue_docs} is lower than --max-docs {settings.max_docs}:"
            " a full-size request could never be admitted",
            hint=f"raise --max-queue-docs to at least {settings.max_docs}, or lower --max-docs",
        )
    model_name = settings.model_name or backend.name
    metrics = ServerMetrics()
    batcher = Batcher(
        backend,
        max_batch_tokens=settings.max_batch_tokens,
        max_batch_size=settings.max_batch_size,
        max_gather_tokens=settings.max_gather_tokens,
        max_wait_ms=settings.max_wait_ms,
        max_queue_docs=settings.max_queue_docs,
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
        docs_url=None,
        redoc_url=None,
    )
    app.state.batcher, app.state.metrics, app.state.settings = batcher, metrics, settings
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    bearer = HTTPBearer(auto_error=False, description="Needed when the server runs with --api-key.")
    keyed = settings.api_key is not None
    error_responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (400, 413, 422, 503)
    }
    # The key check (and its Bearer scheme and 401 in the schema) exists only when a key is set.
    unauthorized: dict[int | str, dict[str, Any]] = (
        {
            401: {
                "model": ErrorResponse,
                "description": "Missing or wrong API key.",
                # Explicit: /metrics answers text/plain, but its 401 is JSON like every error.
                "content": {"application/json": {}},
            }
        }
        if keyed
        else {}
    )

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

    auth = [Depends(require_key)] if keyed else []

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
                413,
                f"field '{'texts' if req.texts is not None else 'documents'}': {len(docs)} documents"
                f" > {settings.max_docs} per request",
                "request_too_large",
            )
        if req.raw_scores:
            raise APIError(
                422,
                "field 'raw_scores': raw logits are not served (scores are sigmoid probabilities);"
                " send false or leave it out",
            )
        field = "texts" if req.texts is not None else "documents"
        strings = [("query", req.query)]
        if req.instruction is not None:
            strings.append(("instruction", req.instruction))
        for i, doc in enumerate(req.documents if req.documents is not None else docs):
            where = f"{field}.{i}" if isinstance(doc, str) else f"{field}.{i}.text"
            strings.append((where, doc if isinstance(doc, str) else doc.text))
        for where, text in strings:
            problem = bad_character(text)
            if problem is not None:
                raise APIError(400, f"field '{where}': {problem}", "invalid_text")
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
        metrics.observe_documents(len(docs), sum(scored.tokens))
        if req.is_tei():
            return JSONResponse(build_tei_response(docs, scored.scores, req.limit(), req.wants_documents()))
        body = build_response(
            f"rerank-{uuid.uuid4().hex}",
            model_name,
            docs,
            scored.scores,
            scored.tokens,
            req.limit(),
            req.wants_documents(),
        )
        return JSONResponse(body)

    for path in RERANK_PATHS:
        app.add_api_route(
            path,
            rerank,
            methods=["POST"],
            dependencies=auth,
            openapi_extra=request_body,
            responses={
                200: {
                    "description": "Cohere-shaped results; a bare TEI list for a TEI-shaped request (texts).",
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [
                                    {"$ref": "#/components/schemas/RerankResponse"},
                                    {"type": "array", "items": {"$ref": "#/components/schemas/TEIResult"}},
                                ]
                            }
                        }
                    },
                },
                **error_responses,
                **unauthorized,
            },
            summary="Rerank documents for a query",
            name=f"rerank{path.replace('/', '_')}",
        )

    @app.post(
        "/tokenize",
        dependencies=auth,
        openapi_extra=request_body,
        responses={200: {"model": TokenizeResponse}, **error_responses, **unauthorized},
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

    @app.get("/v1/models", dependencies=auth, responses=unauthorized)
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

    @app.get("/metrics", dependencies=auth, response_class=PlainTextResponse, responses=unauthorized)
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

    _add_offline_docs(app)
    app.state.started = time.time()
    _add_request_schema(app, settings, [RerankResponse, TEIResult])
    return app


def _add_offline_docs(app) -> None:
    """``/docs``: Swagger UI from the ``swagger-ui-py`` package's bundled files, not a CDN."""
    from pathlib import Path

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    try:
        import swagger_ui
    except ImportError:  # the route is left out; /openapi.json still describes the API
        return
    static = Path(swagger_ui.__file__).parent / "static"
    if not (static / "swagger-ui-bundle.js").is_file():
        return
    app.mount("/docs/assets", StaticFiles(directory=str(static)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def _no_nul(extra: str = "") -> str:
    return "^[^\\u0000]*" + extra + "[^\\u0000]*$" if extra else "^[^\\u0000]*$"


def _add_request_schema(app, settings: ServeSettings, response_models: list) -> None:
    """Publish RerankRequest in the OpenAPI components (the routes parse the body themselves),
    with the limits this server enforces, so that what the schema allows is what it accepts."""
    from rerankctl.serve.schemas import RerankRequest

    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in response_models:
            sub = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in sub.pop("$defs", {}).items():
                components.setdefault(name, nested)
            components.setdefault(model.__name__, sub)
        defs = RerankRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in defs.pop("$defs", {}).items():
            components.setdefault(name, sub)
        props = defs["properties"]
        text = {"type": "string", "maxLength": settings.max_doc_chars, "pattern": _no_nul()}
        # A non-blank query without NUL; a document list of 1..max_docs; exactly one of the two lists.
        props["query"] = {
            "type": "string",
            "description": props["query"].get("description", ""),
            "minLength": 1,
            "maxLength": settings.max_query_chars,
            "pattern": _no_nul("[^\\s\\u0000]"),
        }
        document = {
            "type": "object",
            "properties": {"text": text},
            "required": ["text"],
            "description": "A document as an object; only text is read.",
        }
        props["documents"] = {
            "type": "array",
            "description": props["documents"].get("description", ""),
            "items": {"anyOf": [text, document]},
            "minItems": 1,
            "maxItems": settings.max_docs,
        }
        props["texts"] = {
            "type": "array",
            "description": props["texts"].get("description", ""),
            "items": text,
            "minItems": 1,
            "maxItems": settings.max_docs,
        }
        props["instruction"] = {
            "anyOf": [{"type": "string", "pattern": _no_nul()}, {"type": "null"}],
            "description": props["instruction"].get("description", ""),
        }
        props["raw_scores"] = {
            "anyOf": [{"type": "boolean", "enum": [False]}, {"type": "null"}],
            "description": props["raw_scores"].get("description", ""),
        }
        defs["required"] = ["query"]
        defs["oneOf"] = [
            {"required": ["documents"], "not": {"required": ["texts"]}},
            {"required": ["texts"], "not": {"required": ["documents"]}},
        ]
        components["RerankRequest"] = defs
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
