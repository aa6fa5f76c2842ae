"""bench/vs_sentence_transformers.py compares like with like: on one model dir, sentence-transformers 6's
CrossEncoder (causal LM + LogitScore) and rerankctl feed the same token ids, give the same scores, and
their configured losses (LambdaLoss natural log, CachedMNRL with raw scores at scale 1) equal
rerankctl's lambdaloss / infonce in value and in gradient. If any of this drifts (an ST release
changes its prompt rendering or loss), the benchmark's ratios stop meaning anything, so CI says so.
"""

from __future__ import annotations

import shutil

import pytest
import torch

st = pytest.importorskip("sentence_transformers")

QUERIES = ["red wooden chair", "quiet small dog"]
DOCS = [
    ["a red wooden chair", "a red metal chair with four legs", "blue table", "green sofa, old and worn"],
    ["small quiet dog breed", "loud big dog barking all night", "a cat", "dogs that rarely bark"],
]


@pytest.fixture(scope="module")
def ce_dir(tiny_qwen3_path, tmp_path_factory):
    from transformers import AutoTokenizer

    from rerankctl.models.reranker_template import reranker_chat_template

    out = tmp_path_factory.mktemp("vs-st") / "model"
    shutil.copytree(tiny_qwen3_path, out)
    tok = AutoTokenizer.from_pretrained(str(out))
    tok.chat_template = reranker_chat_template()
    tok.save_pretrained(str(out))
    return out


def _ours(ce_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.models.shared_prefix import enable_shared_prefix
    from rerankctl.models.yes_no_head import install_yes_no_head

    prompt = PromptTokenizer(AutoTokenizer.from_pretrained(str(ce_dir)), max_length=256)
    model = AutoModelForCausalLM.from_pretrained(str(ce_dir), dtype=torch.float32)
    install_yes_no_head(model, prompt.yes_id, prompt.no_id)
    assert enable_shared_prefix(model)
    return prompt, model


def _our_scores(prompt, model):
    from rerankctl.models.shared_prefix import shared_prefix_scores

    ids, _ = prompt.encode_pairs(
        [q for q, ds in zip(QUERIES, DOCS) for _ in ds], [d for ds in DOCS for d in ds]
    )
    batch = prompt.pad(ids)
    groups = [g for g, ds in enumerate(DOCS) for _ in ds]
    return shared_prefix_scores(model, batch["input_ids"], batch["attention_mask"], groups).view(
        len(QUERIES), -1
    )


def test_same_ids_and_scores(ce_dir):
    from sentence_transformers import CrossEncoder

    from rerankctl.models.reranker import Qwen3Reranker

    ce = CrossEncoder(str(ce_dir), device="cpu", max_length=256)
    assert type(ce[-1]).__name__ == "LogitScore"
    rr = Qwen3Reranker(str(ce_dir), device="cpu", dtype="fp32", max_length=256)
    pairs = [(q, d) for q, ds in zip(QUERIES, DOCS) for d in ds]
    feats = ce.preprocess(pairs)
    st_ids = [row[m.bool()].tolist() for row, m in zip(feats["input_ids"], feats["attention_mask"])]
    assert st_ids == rr.encode([p[0] for p in pairs], [p[1] for p in pairs])
    got = ce.predict(pairs, batch_size=3, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
    ours = rr.score_pairs([p[0] for p in pairs], [p[1] for p in pairs], normalize=False)
    assert got.tolist() == pytest.approx(ours, abs=1e-5)
    assert max(ours) - min(ours) > 1e-3  # a random model that scores everything alike would prove nothing


@pytest.mark.parametrize("loss", ["lambda", "infonce"])
def test_same_loss_and_gradients(ce_dir, loss):
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import losses as st_losses

    from rerankctl.losses import infonce_loss, lambda_loss

    ce = CrossEncoder(str(ce_dir), device="cpu", max_length=256)
    ce.train()
    prompt, model = _ours(ce_dir)
    labels = [[1.0, 0.0, 0.0, 2.0], [2.0, 0.0, 1.0, 0.0]]
    if loss == "lambda":
        st_loss = st_losses.LambdaLoss(ce, mini_batch_size=-1, reduction_log="natural")
        theirs = st_loss([QUERIES, DOCS], [torch.tensor(x) for x in labels])
        ours = lambda_loss(_our_scores(prompt, model), torch.tensor(labels))
    else:  # one query, positive first: CachedMNRL's columns are query, positive, hard negatives
        st_loss = st_losses.CachedMultipleNegativesRankingLoss(
            ce, mini_batch_size=2, activation_fn=torch.nn.Identity(), scale=1.0
        )
        theirs = st_loss([[QUERIES[0]]] + [[d] for d in DOCS[0]])
        scores = _our_scores(prompt, model)[:1]
        ours = infonce_loss(scores, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert float(theirs.detach()) == pytest.approx(float(ours.detach()), abs=1e-5)
    theirs.backward()
    ours.backward()
    st_params = dict(ce.model.named_parameters())
    checked = 0
    for name, p in model.named_parameters():
        if "layers.1." in name and p.grad is not None:
            ref = st_params[name].grad
            assert ref is not None, name
            torch.testing.assert_close(p.grad, ref, atol=1e-6, rtol=1e-4, msg=name)
            checked += 1
    assert checked >= 5
