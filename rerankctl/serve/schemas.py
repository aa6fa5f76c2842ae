"""Request and response models of the rerank API (DESIGN.md section 7).

One request model accepts the shapes the common rerank clients send:

* Cohere v1/v2, Jina, Xinference, vLLM, Infinity: ``{"query", "documents": [...], "top_n"?,
  "return_documents"?, "model"?}``, documents as strings or ``{"text": ...}`` objects;
* TEI: ``{"query", "texts": [...], "return_text"?}``;
* ``top_k`` as a synonym of ``top_n``; an optional per-request ``instruction``.

Fields nobody here uses (``max_chunks_per_doc``, ``rank_fields``, ``truncate``, ...) are ignored,
as the original servers do for fields they do not know.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class TextDocument(BaseModel):
    """A document given as an object; only ``text`` is read."""

    model_config = ConfigDict(extra="allow")

    text: str = Field(description="The document text.")


class RerankRequest(BaseModel):
    """A rerank request in any of the accepted shapes."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(
        None, description="Model name; accepted for compatibility, the served model answers."
    )
    query: str = Field(description="The search query.")
    documents: list[str | TextDocument] | None = Field(
        None, description='Documents to rank: strings or {"text": ...} objects (Cohere, Jina, vLLM, ...).'
    )
    texts: list[str] | None = Field(None, description="Documents to rank, TEI style (instead of documents).")
    top_n: int | None = Field(None, ge=1, description="Return only the best top_n results.")
    top_k: int | None = Field(None, ge=1, description="Synonym of top_n.")
    return_documents: bool | None = Field(None, description="Include each document's text in the results.")
    return_text: bool | None = Field(None, description="TEI synonym of return_documents.")
    instruction: str | None = Field(
        None, description="Task instruction for this request (default: the server's)."
    )

    @model_validator(mode="after")
    def _one_document_list(self) -> RerankRequest:
        if self.documents is None and self.texts is None:
            raise ValueError("give the documents to rank in 'documents' (or 'texts')")
        if self.documents is not None and self.texts is not None:
            raise ValueError("give either 'documents' or 'texts', not both")
        return self

    def document_texts(self) -> list[str]:
        """The documents as plain strings, in request order."""
        if self.texts is not None:
            return list(self.texts)
        return [d if isinstance(d, str) else d.text for d in self.documents or []]

    def limit(self) -> int | None:
        return self.top_n if self.top_n is not None else self.top_k

    def wants_documents(self) -> bool:
        return bool(self.return_documents if self.return_documents is not None else self.return_text)


class ResultDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="Relevance score; higher is more relevant.")
    document: ResultDocument | None = Field(None, description="The document, when return_documents is true.")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class TokenMeta(BaseModel):
    input_tokens: int
    output_tokens: int


class Meta(BaseModel):
    tokens: TokenMeta


class RerankResponse(BaseModel):
    """Results sorted by relevance_score, descending; map them back by index."""

    id: str
    model: str
    results: list[RerankResult]
    usage: Usage
    meta: Meta


class ErrorResponse(BaseModel):
    """Every error: a message a person can act on, the error type and the HTTP status."""

    message: str
    type: str
    code: int


class TokenizeResponse(BaseModel):
    """Prompt tokens per document (after truncation) and the server's limit."""

    model: str
    tokens: list[int]
    max_length: int


def describe_validation_error(exc: ValidationError | list[dict[str, Any]]) -> str:
    """One readable line from pydantic errors: ``field 'documents.2': Input should be a valid string``."""
    errors = exc.errors() if isinstance(exc, ValidationError) else exc
    parts: dict[str, str] = {}
    for err in errors:
        raw = [str(x) for x in err.get("loc", ()) if x != "body"]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if "str" in raw or "TextDocument" in raw:
            # A document failed both branches of str | {"text": str}: one message for the document.
            raw = raw[: min(raw.index(b) for b in ("str", "TextDocument") if b in raw)]
            msg = "must be a string or an object with a 'text' string"
        where = ".".join(raw)
        parts.setdefault(where, f"field '{where}': {msg}" if where else msg)
    lines = list(parts.values())
    more = len(lines) - 3
    return "; ".join(lines[:3]) + (f" (and {more} more)" if more > 0 else "")


def build_response(
    request_id: str,
    model: str,
    docs: list[str],
    scores: list[float],
    tokens: list[int],
    top_n: int | None,
    return_documents: bool,
) -> dict[str, Any]:
    """The response body: results best first (ties keep request order), cut to ``top_n``."""
    order = sorted(range(len(docs)), key=lambda i: -scores[i])
    if top_n is not None:
        order = order[:top_n]
    results = []
    for i in order:
        item: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
        if return_documents:
            item["document"] = {"text": docs[i]}
        results.append(item)
    total = int(sum(tokens))
    return {
        "id": request_id,
        "model": model,
        "results": results,
        "usage": {"prompt_tokens": total, "total_tokens": total},
        "meta": {"tokens": {"input_tokens": total, "output_tokens": 0}},
    }
