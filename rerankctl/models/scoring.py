"""The yes/no score of a causal LM, computed from the last position only.

For a left-padded batch the last position (-1) of every row is the token right
before the answer. The reranker's score is::

    logit_yes - logit_no = h_last · W[yes] - h_last · W[no] = h_last · (W[yes] - W[no])

so only the decoder's last hidden state and two rows of the LM head are needed.
Full-vocabulary logits (151,936 per position) are never materialised; on a
Qwen3-0.6B-shaped model this is the difference between a (B, T, 151936) tensor
and a (B,) one (see ``bench/sft_step.py``).
"""

from __future__ import annotations

from typing import Any


def unwrap_causal_lm(model: Any) -> Any:
    """The underlying ``*ForCausalLM`` of a PEFT-wrapped or plain model.

    PEFT injects its LoRA layers into the modules of the wrapped model, so calling
    the decoder of the unwrapped model still runs the adapters.
    """
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def decoder_and_head(model: Any) -> tuple[Any, Any]:
    """(decoder that returns hidden states, output embedding module) of a causal LM."""
    lm = unwrap_causal_lm(model)
    decoder = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model
    head = lm.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(lm).__name__} has no output embeddings (LM head)")
    return decoder, head


def last_hidden_state(model: Any, input_ids, attention_mask):
    """Hidden state at the last position, shape (B, H). Requires left padding."""
    decoder, _ = decoder_and_head(model)
    out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.last_hidden_state[:, -1, :]


def yes_no_scores(model: Any, input_ids, attention_mask, yes_id: int, no_id: int):
    """``logit_yes - logit_no`` at the last position, shape (B,), in float32.

    Gradients reach the decoder and the two LM-head rows (the tied embedding in
    Qwen3 small models) exactly as they would through full logits.
    """
    import torch

    _, head = decoder_and_head(model)
    hidden = last_hidden_state(model, input_ids, attention_mask)
    weight = head.weight
    direction = weight[yes_id] - weight[no_id]
    score = hidden.to(torch.float32) @ direction.to(torch.float32)
    bias = getattr(head, "bias", None)
    if bias is not None:
        score = score + (bias[yes_id] - bias[no_id]).to(torch.float32)
    return score


def full_logits_scores(model: Any, input_ids, attention_mask, yes_id: int, no_id: int):
    """The naive reference: full-vocabulary logits at every position, then two columns.

    Only for parity tests and ``bench/sft_step.py``; never used for training or serving.
    """
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    last = logits[:, -1, :].to(torch.float32)
    return last[:, yes_id] - last[:, no_id]
