"""A chat template that renders exactly the Qwen3-Reranker prompt from query/document messages.

sentence-transformers v6 ``CrossEncoder.predict([(q, d)])`` turns each pair into the messages
``[{"role": "query", ...}, {"role": "document", ...}]`` (a ``prompt=`` becomes a leading
``system`` message) and renders them with the model's chat template; vLLM's score/rerank API
does the same with ``chat_template``. A seq-cls export that shipped the tokenizer's ChatML
template made CrossEncoder wrap the pair in a chat turn (139 tokens instead of 108, scores off by
up to 0.85). This template makes both consumers produce the very ids rerankctl scores:

    PREFIX + "<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {document}" + SUFFIX

The instruction comes from an ``instruction`` template kwarg, else a ``system`` message, else
the default. Content may be a string (flat messages) or a list of ``{"type": "text"}`` parts
(structured messages).
"""

from __future__ import annotations

from rerankctl.data.prompt import DEFAULT_INSTRUCTION, PREFIX, SUFFIX


def _literal(text: str) -> str:
    """``text`` as a single-quoted Jinja string literal (no raw newlines: the renderer's
    trim_blocks/lstrip_blocks and its trailing-newline rule cannot touch it)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def reranker_chat_template(default_instruction: str | None = None) -> str:
    """The Jinja source; ``default_instruction`` replaces the web-search default when given."""
    default = default_instruction or DEFAULT_INSTRUCTION
    return (
        "{%- set ns = namespace(instruction='', query='', document='') -%}"
        "{%- for message in messages -%}"
        "{%- if message['content'] is string -%}{%- set text = message['content'] -%}"
        "{%- else -%}{%- set text = message['content'] | selectattr('type', 'equalto', 'text')"
        " | map(attribute='text') | join('') -%}{%- endif -%}"
        "{%- if message['role'] == 'system' -%}{%- set ns.instruction = text -%}"
        "{%- elif message['role'] == 'query' or message['role'] == 'user' -%}{%- set ns.query = text -%}"
        "{%- elif message['role'] == 'document' -%}{%- set ns.document = text -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if instruction is defined and instruction -%}{%- set ns.instruction = instruction -%}{%- endif -%}"
        f"{{{{- {_literal(PREFIX + '<Instruct>: ')} ~ (ns.instruction or {_literal(default)})"
        f" ~ {_literal(chr(10) + '<Query>: ')} ~ ns.query ~ {_literal(chr(10) + '<Document>: ')}"
        f" ~ ns.document ~ {_literal(SUFFIX)} -}}}}"
    )
