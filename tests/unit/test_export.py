"""Export: merged LoRA and seq-cls models score exactly like the yes/no scorer they came from."""

from __future__ import annotations

import pytest
import torch

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


def _main(argv, capsys):
    from rerankctl.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


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
