"""The model card (README.md) written into every export.

It says what a reader needs to reproduce the scores: the base model, the training data and loss
(from the run store entry of the run that wrote the checkpoint, when there is one), the eval
figures recorded for that run, and copy-paste usage for sentence-transformers, transformers, vLLM
and ``rerankctl serve``. A checkpoint with no run in the store still gets a card, saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def find_run(checkpoint: str | Path) -> Any | None:
    """The run whose output directory holds ``checkpoint`` (``final/``, ``checkpoint-N/`` or itself)."""
    from rerankctl.paths import store_path

    if not store_path().is_file():
        return None
    from rerankctl.store import RunStore

    checkpoint = Path(checkpoint).resolve()
    candidates = {checkpoint, checkpoint.parent}
    try:
        with RunStore.open(reap=False) as store:
            for run in store.list_runs():
                if run.output_dir and Path(run.output_dir).resolve() in candidates:
                    return run
    except Exception:  # a card is documentation: an unreadable store must not fail the export
        return None
    return None


def _eval_rows(run: Any) -> list[tuple[str, str, float]]:
    from rerankctl.store import RunStore

    rows: list[tuple[str, str, float]] = []
    try:
        with RunStore.open(reap=False) as store:
            rows = [(e.dataset, e.metric, e.value) for e in store.evals(run_id=run.id)]
            latest = store.latest_metrics(run.id)
    except Exception:
        return rows
    for key, (step, value) in sorted(latest.items()):
        if key.startswith("eval/") or key.startswith("eval_"):
            rows.append((f"training eval (step {step})", key, value))
    return rows


def _base_model(checkpoint: Path, run: Any | None) -> str:
    adapter = checkpoint / "adapter_config.json"
    if adapter.is_file():
        base = json.loads(adapter.read_text("utf-8")).get("base_model_name_or_path")
        if base:
            return str(base)
    if run is not None and (run.config or {}).get("model"):
        return str(run.config["model"])
    return str(checkpoint)


def render_model_card(
    checkpoint: str | Path,
    form: str,
    max_length: int | None,
    instruction: str | None,
    run: Any | None = None,
    evals: list[tuple[str, str, float]] | None = None,
) -> str:
    """The card's Markdown. ``form`` is ``"seq-cls"`` or ``"causal-lm"``."""
    from rerankctl.data.prompt import DEFAULT_INSTRUCTION

    checkpoint = Path(checkpoint)
    config = (run.config or {}) if run is not None else {}
    instr = instruction or DEFAULT_INSTRUCTION
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-ranking",
        "tags: [reranker, qwen3, rerankctl"
        + (", sentence-transformers, cross-encoder" if form == "seq-cls" else "")
        + "]",
        "---",
        "",
        f"# Reranker exported by rerankctl ({form})",
        "",
        f"- **Base model:** `{_base_model(checkpoint, run)}`",
        f"- **Exported from:** `{checkpoint}`",
    ]
    if run is not None:
        lines += [
            f"- **Training run:** `{run.name}` ({run.kind}, {run.status}, id `{run.id}`)",
            f"- **Data:** `{config.get('data') or config.get('train_data') or 'not recorded'}`",
            f"- **Loss:** `{config.get('loss_type') or config.get('loss') or 'not recorded'}`"
            + (f" (temperature {config['temperature']})" if "temperature" in config else ""),
        ]
        if config.get("lora") is not None:
            lines.append(f"- **LoRA:** {config.get('lora')}")
    else:
        lines.append("- **Training run:** none found in the run store (data and loss not recorded)")
    lines += [
        f"- **Max length:** {max_length or 'not set'} tokens (the document is cut first; prefix and suffix kept)",
        f"- **Default instruction:** {instr}",
        "",
        "## Evaluation",
        "",
    ]
    if evals:
        lines += ["| dataset | metric | value |", "|---|---|---|"]
        lines += [f"| {d} | {m} | {v:.4f} |" for d, m, v in evals]
    else:
        lines.append("No eval figures were recorded for this run (`rerankctl eval` records them).")
    lines += ["", "## Score", ""]
    lines.append(
        "score = sigmoid(logit_yes - logit_no) of the Qwen3-Reranker prompt "
        "`<|im_start|>system ... <Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {document}"
        "<|im_end|>\\n<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n`."
    )
    lines += ["", "## Usage", ""]
    if form == "seq-cls":
        lines += [
            "The tokenizer's chat template renders exactly that prompt from `query`/`document` messages, "
            "so chat-template consumers need no hand-made prompt.",
            "",
            "### sentence-transformers (v6)",
            "",
            "```python",
            "from sentence_transformers import CrossEncoder",
            "",
            'model = CrossEncoder("PATH")',
            'scores = model.predict([("what is a panda?", "The giant panda is a bear native to China.")])',
            f'# another instruction: model.predict(pairs, prompt="{instr}")',
            "```",
            "",
            "### transformers",
            "",
            "```python",
            "import torch",
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "",
            'tokenizer = AutoTokenizer.from_pretrained("PATH")',
            'model = AutoModelForSequenceClassification.from_pretrained("PATH").eval()',
            'messages = [{"role": "query", "content": "what is a panda?"},',
            '            {"role": "document", "content": "The giant panda is a bear native to China."}]',
            "text = tokenizer.apply_chat_template(messages, tokenize=False)  # or build the prompt by hand",
            'inputs = tokenizer([text], return_tensors="pt", padding=True)',
            "with torch.no_grad():",
            "    score = torch.sigmoid(model(**inputs).logits[:, 0])",
            "```",
            "",
            "### vLLM",
            "",
            "```bash",
            "vllm serve PATH --runner pooling",
            "curl localhost:8000/score -H 'content-type: application/json' \\",
            '  -d \'{"text_1": "what is a panda?", "text_2": ["The giant panda is a bear native to China."]}\'',
            "```",
            "",
            "vLLM applies the model's chat template to score requests; older versions without score "
            "templates need the full prompt as `text_1`/`text_2`.",
        ]
    else:
        lines += [
            "### transformers (yes/no causal LM, as the original Qwen3-Reranker)",
            "",
            "```python",
            "import torch",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            'tokenizer = AutoTokenizer.from_pretrained("PATH", padding_side="left")',
            'model = AutoModelForCausalLM.from_pretrained("PATH").eval()',
            'yes, no = tokenizer.convert_tokens_to_ids(["yes", "no"])',
            "# prompt = PREFIX + '<Instruct>: ...\\n<Query>: ...\\n<Document>: ...' + SUFFIX (see Score)",
            "logits = model(**tokenizer([prompt], return_tensors='pt')).logits[:, -1]",
            "score = torch.sigmoid(logits[:, yes] - logits[:, no])",
            "```",
            "",
            "### vLLM",
            "",
            "```bash",
            "vllm serve PATH --runner pooling --hf-overrides "
            '\'{"architectures": ["Qwen3ForSequenceClassification"], '
            '"classifier_from_token": ["no", "yes"], "is_original_qwen3_reranker": true}\'',
            "```",
        ]
    lines += [
        "",
        "### rerankctl serve",
        "",
        "```bash",
        "rerankctl serve --model PATH" + (f" --max-length {max_length}" if max_length else ""),
        "curl localhost:8000/v1/rerank -H 'content-type: application/json' \\",
        '  -d \'{"query": "what is a panda?", "documents": ["The giant panda is a bear."]}\'',
        "```",
        "",
        "Check that every hop scores alike: `rerankctl eval parity --model PATH --endpoints URL`.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    directory: Path, checkpoint: str | Path, form: str, max_length: int | None, instruction: str | None
) -> Path:
    run = find_run(checkpoint)
    evals = _eval_rows(run) if run is not None else []
    path = Path(directory) / "README.md"
    path.write_text(render_model_card(checkpoint, form, max_length, instruction, run, evals), "utf-8")
    return path
