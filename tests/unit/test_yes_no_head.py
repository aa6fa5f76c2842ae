"""YesNoHead: the score as the model's forward equals the two-row formula, in value and gradient."""

from __future__ import annotations

import os

import pytest
import torch

from rerankctl.models.loading import load_causal_lm
from rerankctl.models.scoring import yes_no_scores
from rerankctl.models.tiny import tiny_qwen3_dir
from rerankctl.models.yes_no_head import YesNoHead, forward_scores, install_yes_no_head, restore_lm_head

YES, NO = 9693, 2152


@pytest.fixture(scope="module")
def model_dir():
    return str(tiny_qwen3_dir(seed=7))


def _batch():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (3, 12), generator=gen)
    attn = torch.ones_like(ids)
    attn[0, :4] = 0  # left padding
    return ids, attn


def test_forward_score_and_gradients_equal_the_two_row_formula(model_dir):
    ids, attn = _batch()
    ref_model = load_causal_lm(model_dir, dtype=torch.float32)
    model = load_causal_lm(model_dir, dtype=torch.float32)
    keys_before = list(model.state_dict())
    install_yes_no_head(model, YES, NO)
    assert isinstance(model.get_output_embeddings(), YesNoHead)
    assert list(model.state_dict()) == keys_before  # saves as a plain causal LM

    ref = yes_no_scores(ref_model, ids, attn, YES, NO)
    got = forward_scores(model, ids, attn)
    assert torch.allclose(got, ref, atol=1e-6)

    (ref * torch.tensor([1.0, -2.0, 0.5])).sum().backward()
    (got * torch.tensor([1.0, -2.0, 0.5])).sum().backward()
    for (name, p_ref), (_, p) in zip(ref_model.named_parameters(), model.named_parameters()):
        assert not p.grad.is_sparse, name  # the head's sparse 2-row gradient was summed in
        assert torch.allclose(p.grad, p_ref.grad, atol=1e-6), name


def test_the_head_gradient_is_sparse_and_lands_dense(model_dir, monkeypatch):
    """Tied weight: the head's backward is a 2-row sparse tensor (no vocabulary-sized zeros);
    even with the embedding lookup off the graph (inputs_embeds), .grad ends up dense."""
    from rerankctl.models import yes_no_head

    model = load_causal_lm(model_dir, dtype=torch.float32)
    install_yes_no_head(model, YES, NO)
    seen = []
    backward = yes_no_head._TwoRows.backward

    def spy(ctx, grad):
        out = backward(ctx, grad)
        seen.append(out[0])
        return out

    monkeypatch.setattr(yes_no_head._TwoRows, "backward", staticmethod(spy))
    ids, attn = _batch()
    forward_scores(model, ids, attn).sum().backward()
    assert len(seen) == 1 and seen[0].is_sparse and seen[0]._nnz() == 2
    weight = model.get_input_embeddings().weight
    model.zero_grad(set_to_none=True)
    embeds = model.get_input_embeddings()(ids).detach()
    out = model(inputs_embeds=embeds, attention_mask=attn, logits_to_keep=1).logits[:, -1, 0]
    out.sum().backward()
    assert weight.grad is not None and not weight.grad.is_sparse
    assert set(weight.grad.abs().sum(1).nonzero().flatten().tolist()) == {YES, NO}


def test_install_is_idempotent_and_restorable(model_dir):
    model = load_causal_lm(model_dir, dtype=torch.float32)
    head = install_yes_no_head(model, YES, NO)
    assert install_yes_no_head(model, YES, NO) is head
    with pytest.raises(ValueError):
        install_yes_no_head(model, NO, YES)
    restore_lm_head(model)
    assert isinstance(model.get_output_embeddings(), torch.nn.Linear)
    assert model.get_output_embeddings().weight is head.weight


def test_scoring_goes_through_a_ddp_wrapper(model_dir, tmp_path):
    """Under DDP the trainer's call is the wrapper's forward (this crashed with AttributeError before)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rdzv", rank=0, world_size=1)
    try:
        model = load_causal_lm(model_dir, dtype=torch.float32)
        install_yes_no_head(model, YES, NO)
        wrapped = DDP(model)
        ids, attn = _batch()
        scores = forward_scores(wrapped, ids, attn)
        scores.sum().backward()
        assert scores.shape == (3,)
        assert model.model.embed_tokens.weight.grad is not None
        assert torch.allclose(scores.detach(), forward_scores(model, ids, attn).detach(), atol=1e-6)
    finally:
        dist.destroy_process_group()
