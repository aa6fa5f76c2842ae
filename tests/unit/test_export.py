"""Export: merged LoRA and seq-cls models score exactly like the yes/no scorer they came from."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import main_exit as _main

from rerankctl.data.prompt import PromptTokenizer, format_full

PAIRS = [
    ("red chair", "a red wooden chair"),
    ("red chair", "blue table"),
    ("数字", "一二三"),
    ("q", "x " * 40),
]


@pytest.fixture(scope="module")
def lora_checkpoint(tiny_qwen3_path, tmp_path_factory):
    """A LoRA adapter with non-zero weights saved next to the tiny base, as training writes it."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankctl.models.peft_wrap import get_peft_model

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen3_path))
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"])
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    out = tmp_path_factory.mktemp("ckpt") / "final"
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tiny_qwen3_path)).save_pretrained(str(out))
    return out


def _scorer_logits(path):
    from rerankctl.models.reranker import Qwen3Reranker

    reranker = Qwen3Reranker(str(path), device="cpu", dtype="fp32", max_length=128)
    return reranker.score_pairs([q for q, _ in PAIRS], [d for _, d in PAIRS], normalize=False)


def test_seq_cls_export_equals_yes_minus_no(lora_checkpoint, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerankctl.models.export import to_seq_cls

    out = to_seq_cls(lora_checkpoint, tmp_path / "seq-cls")
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    assert type(model).__name__ == "Qwen3ForSequenceClassification"
    assert model.config.num_labels == 1
    tokenizer = AutoTokenizer.from_pretrained(str(out), padding_side="left")
    prompt = PromptTokenizer(tokenizer, max_length=128)
    batch = prompt.pad(prompt.encode_pairs([q for q, _ in PAIRS], [d for _, d in PAIRS])[0])
    with torch.no_grad():
        logits = model(**batch).logits.squeeze(-1)
    expected = torch.tensor(_scorer_logits(lora_checkpoint))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    # The same holds for the plain text route serving tools use (tokenize the full prompt text).
    text = tokenizer([format_full(q, d) for q, d in PAIRS], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits_text = model(**text).logits.squeeze(-1)
    torch.testing.assert_close(logits_text, expected, atol=1e-5, rtol=1e-5)


def test_merge_lora_keeps_the_scores(lora_checkpoint, tiny_qwen3_path, tmp_path):
    from rerankctl.models.export import merge_lora

    merged = merge_lora(lora_checkpoint, tmp_path / "merged")
    assert not (merged / "adapter_config.json").exists()
    assert (merged / "config.json").is_file()
    before = _scorer_logits(lora_checkpoint)
    assert before != pytest.approx(_scorer_logits(tiny_qwen3_path), abs=1e-4)  # the adapter matters
    assert _scorer_logits(merged) == pytest.approx(before, abs=1e-5)


def test_export_cli_errors_are_one_line(lora_checkpoint, tiny_qwen3_path, tmp_path, capsys):
    code, _, err = _main(["export", str(tiny_qwen3_path), "--merge-lora", "-o", str(tmp_path / "x")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "not a LoRA adapter" in err and "hint:" in err
    assert not (tmp_path / "x").exists()
    code, out, _ = _main(
        ["export", str(lora_checkpoint), "--to", "seq-cls", "-o", str(tmp_path / "y")], capsys
    )
    assert code == 0 and "seq" in out
    assert (tmp_path / "y" / "rerankctl_export.json").is_file()


def _fifty_pairs():
    """50 pairs: short, multilingual, with template-looking text, and 10 far past max_length."""
    import random

    rng = random.Random(7)
    words = "red chair table 数字 一二三 {{ x }} <Query>: panda bear 'quote' \"dq\" \\n café".split()
    pairs = []
    for i in range(50):
        n_doc = 300 if i % 5 == 0 else rng.randint(1, 10)
        query = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
        pairs.append((query, " ".join(rng.choice(words) for _ in range(n_doc))))
    return pairs


@pytest.fixture(scope="module")
def seq_cls_export(lora_checkpoint, tmp_path_factory):
    from rerankctl.models.export import to_seq_cls

    return to_seq_cls(lora_checkpoint, tmp_path_factory.mktemp("exp") / "seq-cls", max_length=128)


@pytest.mark.slow  # ~20 s on 2 shared cores (CrossEncoder load + 150 scored pairs)
def test_seq_cls_export_scores_alike_in_crossencoder_transformers_and_rerankctl(
    lora_checkpoint, seq_cls_export
):
    """Issue 17: sentence-transformers 6 CrossEncoder, transformers and rerankctl agree to 1e-5 on
    50 pairs, 10 of them truncated at max_length; also with an instruction (CrossEncoder prompt=)."""
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerankctl.models.reranker import Qwen3Reranker

    pairs = _fifty_pairs()
    queries, docs = [q for q, _ in pairs], [d for _, d in pairs]
    reranker = Qwen3Reranker(str(lora_checkpoint), device="cpu", dtype="fp32", max_length=128)
    expected = reranker.score_pairs(queries, docs)
    ids, truncated = reranker.prompt.encode_pairs(queries, docs)
    assert sum(truncated) >= 10 and all(len(x) <= 128 for x in ids)

    ce = CrossEncoder(str(seq_cls_export), device="cpu")
    assert ce.max_length == 128
    got = [float(x) for x in ce.predict(pairs, batch_size=16)]
    assert got == pytest.approx(expected, abs=1e-5)
    with_instruction = reranker.score_pairs(queries, docs, instruction="Find the furniture")
    assert with_instruction != pytest.approx(expected, abs=1e-4)  # the instruction matters
    got = [float(x) for x in ce.predict(pairs, batch_size=16, prompt="Find the furniture")]
    assert got == pytest.approx(with_instruction, abs=1e-5)

    # transformers with the plain prompt (untruncated pairs: the text route has no document cut).
    tokenizer = AutoTokenizer.from_pretrained(str(seq_cls_export))
    model = AutoModelForSequenceClassification.from_pretrained(str(seq_cls_export)).eval()
    short = [i for i, t in enumerate(truncated) if not t]
    text = tokenizer([format_full(queries[i], docs[i]) for i in short], return_tensors="pt", padding=True)
    with torch.no_grad():
        probs = torch.sigmoid(model(**text).logits[:, 0]).tolist()
    assert probs == pytest.approx([expected[i] for i in short], abs=1e-5)


def test_seq_cls_template_renders_the_exact_prompt(seq_cls_export):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(seq_cls_export))
    for query, doc in _fifty_pairs()[:10]:
        flat = [{"role": "query", "content": query}, {"role": "document", "content": doc}]
        assert tokenizer.apply_chat_template(flat, tokenize=False) == format_full(query, doc)
        structured = [
            {"role": "system", "content": [{"type": "text", "text": "INS"}]},
            {"role": "query", "content": [{"type": "text", "text": query}]},
            {"role": "document", "content": [{"type": "text", "text": doc}]},
        ]
        assert tokenizer.apply_chat_template(structured, tokenize=False) == format_full(query, doc, "INS")


def test_export_model_card_reads_the_run_store(lora_checkpoint, tmp_path):
    from rerankctl.models.export import to_seq_cls
    from rerankctl.store import RunStore

    with RunStore.open() as store:
        with store.create_run(
            kind="sft",
            config={
                "model": "tiny-base",
                "data": "train.jsonl",
                "loss_type": "lambdaloss",
                "max_length": 160,
            },
            name="card-run",
            output_dir=str(lora_checkpoint.parent),
        ) as writer:
            store.log_eval("scifact", "ndcg@10", 0.4321, model=str(lora_checkpoint), run_id=writer.id)
    out = to_seq_cls(lora_checkpoint, tmp_path / "exp")
    card = (out / "README.md").read_text("utf-8")
    assert "card-run" in card and "train.jsonl" in card and "lambdaloss" in card
    assert "| scifact | ndcg@10 | 0.4321 |" in card
    assert "CrossEncoder(" in card and "vllm serve" in card and "rerankctl serve" in card
    # max_length came from the run: the tokenizer truncates where training did.
    assert json.loads((out / "tokenizer_config.json").read_text("utf-8"))["model_max_length"] == 160
