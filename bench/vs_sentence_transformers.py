"""rerankctl vs sentence-transformers' CrossEncoder on one model dir, the same token ids, A/B interleaved.

The model: a random-weight Qwen3 shape (hidden 256 x 4 layers, the real 151,936-token vocabulary,
tied embeddings) saved with the real Qwen3 tokenizer (rerankctl's offline build) and a chat
template that renders the exact Qwen3-Reranker prompt (rerankctl.models.reranker_template), so
``CrossEncoder(dir)`` loads it as a causal LM with its ``LogitScore(yes, no)`` head (ST 6's
default for ``*ForCausalLM``: ``logit[yes] - logit[no]`` at the last token, ``logits_to_keep=1``)
and both tools feed the model identical input ids. Before any timing the script asserts:

* the ids ST's ``preprocess`` builds equal rerankctl's ``PromptTokenizer`` ids for every pair;
* ``CrossEncoder.predict`` raw scores equal rerankctl's to 1e-5;
* each loss value on the first batch equals the other side's to 1e-5 (same weights).

Sentence-transformers in its best configuration for each loss:

* LambdaLoss: ``LambdaLoss(model, mini_batch_size=-1, reduction_log="natural")`` (every pair
  of the batch in one forward; ``mini_batch_size=0``/None would mean "batch size" = the number
  of *queries*; natural log = rerankctl's ``lambdaloss``, ST's binary default is it / ln 2);
* InfoNCE: ``CachedMultipleNegativesRankingLoss(model, mini_batch_size=8,
  activation_fn=Identity, scale=1)``, one query per step (its ``num_negatives=0`` is refused, and
  with more queries it adds their documents as in-batch negatives): cross-entropy over [positive, hard negatives] of raw
  scores, i.e. rerankctl's ``infonce`` at temperature 1 (ST's sigmoid x 10 default is a
  different loss); group documents are its hard-negative columns.

rerankctl: ``PromptTokenizer`` ids, one packed shared-prefix forward per batch (each query's
prompt head once, ``shared_prefix_scores`` as ``train sft`` calls it), the two-row yes/no head,
the same loss. Both: fused AdamW at the same lr, fp32, ``torch.set_num_threads(1)``; a step is
tokenize + forward + backward + optimizer step (plain step loops on both sides, neither
tool's Trainer: no data loader, no gradient clipping), timed round by round with the order of the two
sides alternating; the figure is the median docs/s and the ratio of medians.

Inference: one query x ``--docs`` documents of ~100 tokens, ``CrossEncoder.predict`` (its best
batch size of ``--st-batch``) vs ``Qwen3Reranker.score_pairs`` (shared prefix), pairs/s.

Usage::

    nice -n 5 timeout 1800 python bench/vs_sentence_transformers.py --group 8 --rounds 5
    nice -n 5 timeout 1800 python bench/vs_sentence_transformers.py --group 32 --queries 1 --rounds 3 --skip-inference
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import machine

WORDS = [
    "the",
    "a",
    "of",
    "model",
    "rank",
    "query",
    "document",
    "search",
    "result",
    "relevant",
    "answer",
    "passage",
    "text",
    "data",
    "index",
    "river",
    "city",
    "music",
    "energy",
    "protein",
    "market",
    "history",
    "engine",
    "garden",
    "winter",
    "language",
    "bridge",
]
SHAPE = dict(
    hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
    num_key_value_heads=2, head_dim=64, initializer_range=0.05,
)  # fmt: skip


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def build_dir(root: Path) -> Path:
    from transformers import AutoModelForCausalLM

    from rerankctl.models.reranker_template import reranker_chat_template
    from rerankctl.models.tiny import qwen3_config
    from rerankctl.models.tokenizer import load_qwen3_tokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(qwen3_config(**SHAPE), dtype=torch.float32)
    tok = load_qwen3_tokenizer()
    tok.chat_template = reranker_chat_template()
    model.save_pretrained(root)
    tok.save_pretrained(root)
    return root


def make_batches(rng, prompt, n_batches: int, queries: int, group: int, max_length: int):
    """(queries, docs per query, labels per query) whose prompts fit ``max_length`` uncut."""
    out = []
    for _ in range(n_batches):
        qs, ds = [], []
        for _ in range(queries):
            q = text(rng, rng.randint(8, 16))
            docs = []
            while len(docs) < group:
                d = text(rng, rng.randint(120, 175))
                ids, cut = prompt.encode_pairs([q], [d])
                if not cut[0] and len(ids[0]) <= max_length:
                    docs.append(d)
            qs.append(q)
            ds.append(docs)
        labels = [[1.0 if j == 0 else 0.0 for j in range(group)] for _ in range(queries)]
        out.append((qs, ds, labels))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--queries", type=int, default=2, help="queries per training step")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--losses", nargs="+", default=["lambda", "infonce"], choices=["lambda", "infonce"])
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--st-batch", type=int, nargs="+", default=[16, 32, 100])
    ap.add_argument("--skip-inference", action="store_true")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars between the table rows

    import sentence_transformers
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import losses as st_losses
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.losses import infonce_loss, lambda_loss
    from rerankctl.models.reranker import Qwen3Reranker
    from rerankctl.models.shared_prefix import enable_shared_prefix, shared_prefix_scores
    from rerankctl.models.tokenizer import load_qwen3_tokenizer
    from rerankctl.models.yes_no_head import install_yes_no_head

    hf_logging.disable_progress_bar()
    print(machine())
    print(f"sentence-transformers {sentence_transformers.__version__}, model {SHAPE}")
    tmp = tempfile.TemporaryDirectory(prefix="vs-st-")
    model_dir = build_dir(Path(tmp.name))
    prompt = PromptTokenizer(load_qwen3_tokenizer(), max_length=args.max_length)
    rng = random.Random(0)

    def st_model() -> CrossEncoder:
        ce = CrossEncoder(str(model_dir), device="cpu", max_length=args.max_length)
        assert type(ce[-1]).__name__ == "LogitScore", ce
        assert (ce[-1].true_token_id, ce[-1].false_token_id) == (prompt.yes_id, prompt.no_id)
        # transformers' default (sdpa) on both sides; rerankctl wraps the same one for its packed rows
        assert ce.model.config._attn_implementation == "sdpa", ce.model.config._attn_implementation
        return ce

    def rk_model():
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        install_yes_no_head(model, prompt.yes_id, prompt.no_id)
        assert enable_shared_prefix(model)
        return model.train()

    def rk_scores(model, qs, ds):
        flat_q = [q for q, docs in zip(qs, ds) for _ in docs]
        flat_d = [d for docs in ds for d in docs]
        ids, _ = prompt.encode_pairs(flat_q, flat_d)
        batch = prompt.pad(ids)
        groups = [g for g, docs in enumerate(ds) for _ in docs]
        return shared_prefix_scores(model, batch["input_ids"], batch["attention_mask"], groups)

    def check_ids(ce, qs, ds) -> None:
        pairs = [(q, d) for q, docs in zip(qs, ds) for d in docs]
        feats = ce.preprocess(pairs)
        st_ids = [row[m.bool()].tolist() for row, m in zip(feats["input_ids"], feats["attention_mask"])]
        ours, _ = prompt.encode_pairs([p[0] for p in pairs], [p[1] for p in pairs])
        assert st_ids == ours, "sentence-transformers and rerankctl feed different token ids"

    # ------------------------------------------------------------------ training
    if not args.skip_training:
        print(
            f"\nSFT: group {args.group}, fused AdamW lr {args.lr}, {args.rounds} interleaved rounds after a warm-up step"
        )
        print(
            "| loss | queries/step | prompt tokens | ST configuration | ST docs/s | rerankctl docs/s | ratio |"
        )
        print("|---|---:|---|---|---:|---:|---:|")
        for loss_name in args.losses:
            # CachedMNRL adds in-batch negatives (other queries' documents) unless num_negatives=0,
            # which it refuses ("cannot sample n_sample <= 0"): one query per step has none.
            queries = args.queries if loss_name == "lambda" else 1
            batches = make_batches(rng, prompt, 4, queries, args.group, args.max_length)
            lengths = [len(x) for b in batches for x in prompt.encode_pairs(
                [q for q, docs in zip(b[0], b[1]) for _ in docs], [d for docs in b[1] for d in docs])[0]]  # fmt: skip
            ce, rk = st_model(), rk_model()
            check_ids(ce, *batches[0][:2])
            if loss_name == "lambda":
                st_loss = st_losses.LambdaLoss(ce, mini_batch_size=-1, reduction_log="natural")
                st_desc = "LambdaLoss(mini_batch_size=-1)"

                def st_forward(b, st_loss=st_loss):
                    return st_loss([b[0], b[1]], [torch.tensor(x) for x in b[2]])

                def rk_forward(b, rk=rk):
                    s = rk_scores(rk, b[0], b[1]).float().view(len(b[0]), -1)
                    return lambda_loss(s, torch.tensor(b[2]))
            else:
                st_loss = st_losses.CachedMultipleNegativesRankingLoss(
                    ce, mini_batch_size=8, num_negatives=None, activation_fn=torch.nn.Identity(), scale=1.0
                )
                st_desc = "CachedMNRL(mini_batch_size=8)"

                def st_forward(b, st_loss=st_loss):
                    # columns: queries, positives, then each hard-negative column
                    cols = [list(b[0])] + [[docs[j] for docs in b[1]] for j in range(args.group)]
                    return st_loss(cols)

                def rk_forward(b, rk=rk):
                    s = rk_scores(rk, b[0], b[1]).float().view(len(b[0]), -1)
                    return infonce_loss(s, torch.tensor(b[2]))

            a, r = float(st_forward(batches[0]).detach()), float(rk_forward(batches[0]).detach())
            assert abs(a - r) <= 1e-5 * max(1.0, abs(a)), f"{loss_name}: ST loss {a} vs rerankctl {r}"
            sides = {
                "st": (st_forward, torch.optim.AdamW(ce.parameters(), lr=args.lr, fused=True)),
                "rk": (rk_forward, torch.optim.AdamW(rk.parameters(), lr=args.lr, fused=True)),
            }
            ce.train()

            def step(side: str, b, sides=sides) -> float:
                fwd, opt = sides[side]
                start = time.perf_counter()
                fwd(b).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                return time.perf_counter() - start

            step("st", batches[1]), step("rk", batches[1])  # warm-up
            took = {"st": [], "rk": []}
            for i in range(args.rounds):
                b = batches[i % len(batches)]
                for side in ("st", "rk") if i % 2 == 0 else ("rk", "st"):
                    took[side].append(step(side, b))
            docs = queries * args.group
            st_rate = docs / statistics.median(took["st"])
            rk_rate = docs / statistics.median(took["rk"])
            print(
                f"| {loss_name} (loss equal: {a:.6f}) | {queries} | {min(lengths)}-{max(lengths)} "
                f"(mean {statistics.mean(lengths):.0f}) | {st_desc} | {st_rate:.2f} | {rk_rate:.2f} "
                f"| {rk_rate / st_rate:.2f}x |",
                flush=True,
            )
            del ce, rk, sides

    # ------------------------------------------------------------------ inference
    if not args.skip_inference:
        query = text(rng, 12)
        docs = [text(rng, rng.randint(90, 110)) for _ in range(args.docs)]
        pairs = [(query, d) for d in docs]
        ce = st_model()
        ce.eval()
        check_ids(ce, [query], [docs])
        rr = Qwen3Reranker(str(model_dir), device="cpu", dtype="fp32", max_length=args.max_length)
        ids, _ = prompt.encode_pairs([query] * len(docs), docs)
        doc_tokens = [len(prompt._enc(" " + d)) for d in docs]

        def st_run(bs):
            return ce.predict(pairs, batch_size=bs, activation_fn=torch.nn.Identity(), convert_to_tensor=True)

        def rk_run():
            return torch.tensor(rr.score_pairs([query] * len(docs), docs, normalize=False))

        ref = rk_run()
        for bs in args.st_batch:
            diff = float((st_run(bs).float() - ref).abs().max())
            assert diff <= 1e-5, f"CrossEncoder.predict (batch {bs}) differs from rerankctl by {diff:.2e}"
        took = {bs: [] for bs in args.st_batch} | {"rk": []}
        for i in range(max(args.rounds, 3)):
            order = list(args.st_batch) + ["rk"]
            for side in order if i % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                st_run(side) if side != "rk" else rk_run()
                took[side].append(time.perf_counter() - start)
        rate = {k: len(docs) / statistics.median(v) for k, v in took.items()}
        best = max(args.st_batch, key=lambda k: rate[k])
        print(
            f"\ninference: 1 query x {len(docs)} docs of {min(doc_tokens)}-{max(doc_tokens)} tokens (prompts "
            f"{min(map(len, ids))}-{max(map(len, ids))}), scores equal (max |diff| {diff:.1e}), {max(args.rounds, 3)} interleaved rounds"
        )
        for bs in args.st_batch:
            print(f"  CrossEncoder.predict batch_size={bs}: {rate[bs]:.1f} pairs/s")
        print(
            f"  rerankctl Qwen3Reranker.score_pairs (shared prefix): {rate['rk']:.1f} pairs/s  "
            f"{rate['rk'] / rate[best]:.2f}x ST's best (batch {best})"
        )


if __name__ == "__main__":
    main()
