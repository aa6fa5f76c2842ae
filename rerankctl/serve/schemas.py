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

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 5 and 5.0, not "5" or true (pydantic's lax mode takes those)."""
    if isinstance(value, (str, bool)):
        raise ValueError("Input should be an integer")
    return value


# What the OpenAPI schema calls an integer >= 1, and nothing more.
PositiveJSONInt = Annotated[int, Field(ge=1), BeforeValidator(_json_integer)]


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
    top_n: PositiveJSONInt | None = Field(None, description="Return only the best top_n results.")
    top_k: PositiveJSONInt | None = Field(None, description="Synonym of top_n.")
    return_documents: bool | None = Field(
        None, strict=True, description="Include each document's text in the results."
    )
    return_text: bool | None = Field(None, strict=True, description="TEI synonym of return_documents.")
    raw_scores: bool | None = Field(
        None,
        strict=True,
        description="TEI: raw logits instead of probabilities (not supported: must be false).",
    )
    instruction: str | None = Field(
        None, description="Task instruction for this request (default: the server's)."
    )

    @model_validator(mode="after")
    def _one_document_list(self) -> RerankRequest:
        for name in ("documents", "texts"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"field '{name}': must be a list, not null")
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

    def is_tei(self) -> bool:
        """A TEI-shaped request (``texts``): answered TEI-shaped, a bare list."""
        return self.texts is not None

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


class TEIResult(BaseModel):
    """One result of a TEI-shaped reply (a bare list of these, best first)."""

    index: int = Field(description="Position of the text in the request.")
    score: float = Field(description="Relevance score; higher is more relevant.")
    text: str | None = Field(None, description="The text, when return_text is true.")


def build_tei_response(
    texts: list[str], scores: list[float], top_n: int | None, return_text: bool
) -> list[dict[str, Any]]:
    """TEI's ``/rerank`` reply: ``[{"index", "score", "text"?}]`` sorted by score, descending."""
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    if top_n is not None:
        order = order[:top_n]
    return [{"index": i, "score": scores[i], **({"text": texts[i]} if return_text else {})} for i in order]


_BAD_CHARACTER = re.compile("[\\x00\\ud800-\\udfff]")


def bad_character(text: str) -> str | None:
    """Why a tokenizer cannot take ``text`` (a lone UTF-16 surrogate, a NUL), or None.

    JSON may carry ``"\\ud800"``: Python decodes it to a lone surrogate, which the tokenizers
    library refuses with a TypeError (a 500 before this check), and which cannot be encoded
    back to UTF-8 in a reply. NUL is refused too: C-string tokenizers and servers (vLLM) cut at it.
    """
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return None
    code, at = ord(found.group()), found.start()
    if code == 0:
        return f"NUL character at character {at}"
    return f"lone surrogate U+{code:04X} at character {at} (not valid Unicode text)"


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
