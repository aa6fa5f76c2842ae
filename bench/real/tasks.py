"""Build the real rerank tasks of bench/real from WordNet 3.0 and the Debian FAQ.

WordNet (nouns): query = a synset's gloss (its definition, without the quoted examples, which
often contain the word itself), document = a synset's lemma group ("dog, domestic dog, Canis
familiaris"). The corpus is every distinct noun lemma group (~70k). Hard negatives are the
first stage's other top-k candidates plus the synset's siblings (co-hyponyms of its hypernym).

Debian FAQ: query = a section's question (its heading), document = a section's answer text.
The held-out split is by section: no held-out question or answer appears in any training row.

A first stage (MiniLM bi-encoder or BM25) retrieves the top-k documents of every query; train
rows are ``{"query", "pos", "neg"}`` (negatives in first-stage order, hardest first), held-out rows
``{"query", "docs", "labels", "first_stage"}`` (docs in first-stage order with their scores).
"""

from __future__ import annotations

import html
import json
import os
import random
import re
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------- WordNet


def read_wordnet_nouns(wordnet_dir: Path) -> dict[str, dict]:
    """offset -> {"lemmas": [...], "gloss": str, "hypernyms": [...]} for every noun synset."""
    synsets: dict[str, dict] = {}
    for line in (Path(wordnet_dir) / "data.noun").open(encoding="utf-8", errors="replace"):
        if line.startswith(" "):
            continue  # licence header
        head, _, gloss = line.partition(" | ")
        f = head.split()
        offset, n_words = f[0], int(f[3], 16)
        lemmas = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        lemmas = [re.sub(r"\([a-z]+\)$", "", w) for w in lemmas]  # adjective markers like (p)
        k = 4 + 2 * n_words
        n_ptr = int(f[k])
        hypernyms = [f[k + 1 + 4 * i + 1] for i in range(n_ptr) if f[k + 1 + 4 * i] in ("@", "@i")]
        definition = gloss.strip().split('; "')[0].split(' "')[0].strip().rstrip(";").strip()
        synsets[offset] = {"lemmas": lemmas, "gloss": definition, "hypernyms": hypernyms}
    return synsets


def lemma_doc(synset: dict) -> str:
    return ", ".join(synset["lemmas"])


def siblings(synsets: dict[str, dict]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for off, s in synsets.items():
        for h in s["hypernyms"]:
            children.setdefault(h, []).append(off)
    out: dict[str, list[str]] = {}
    for off, s in synsets.items():
        sib = [c for h in s["hypernyms"] for c in children.get(h, []) if c != off]
        out[off] = sib
    return out


# ---------------------------------------------------------------- Debian FAQ


def read_debian_faq(faq_dir: Path) -> list[dict]:
    """Sections of the Debian FAQ HTML: {"chapter", "id", "question", "answer"}.

    Only ``*.en.html`` is read: ``X.html`` is a symlink to ``X.en.html`` (reading both doubled
    every section). A section is an ``<h2>`` or ``<h3>`` heading ("8.1.2. APT") and the text up to
    the next heading; the index and the FAQ's own colophon (faqinfo) are skipped, and so are
    headings whose text is only an introduction to subsections (40 characters or less).
    """
    sections, seen = [], set()
    for page in sorted(Path(faq_dir).glob("*.en.html")):
        if page.name in ("index.en.html", "faqinfo.en.html"):
            continue
        text = page.read_text("utf-8", errors="replace")
        parts = re.split(r"<h[23][^>]*>(.*?)</h[23]>", text, flags=re.S)
        for i in range(1, len(parts) - 1, 2):
            number, _, q = _clean(parts[i]).partition(" ")
            a = _clean(re.split(r"<h[1-4][^>]*>", parts[i + 1])[0])
            if q and len(a) > 40 and a not in seen:
                seen.add(a)
                sections.append(
                    {"chapter": page.name.split(".")[0], "id": number.rstrip("."), "question": q, "answer": a}
                )
    return sections


def _clean(fragment: str) -> str:
    fragment = re.sub(r"<[^>]+>", " ", fragment)
    return re.sub(r"\s+", " ", html.unescape(fragment)).strip()


# ---------------------------------------------------------------- first stages


class MiniLM:
    """all-MiniLM-L6-v2 through sentence-transformers; cosine similarity."""

    def __init__(self, model_dir: Path, cache: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_dir), device="cpu")
        self.cache = cache

    def encode(self, texts: list[str], name: str | None = None) -> np.ndarray:
        path = self.cache / f"{name}.npy" if name else None
        if path is not None and path.exists():
            emb = np.load(path)
            if len(emb) == len(texts):
                return emb
        emb = self.model.encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
        if path is not None:
            # The cache folder does not exist on a first run; write then rename so an
            # interrupted run never leaves a truncated .npy for the next one to load.
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, emb)
            os.replace(tmp, path)
        return emb


def bm25_scores(corpus: list[str], queries: list[str]) -> np.ndarray:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize(queries, stopwords="en", show_progress=False)
    docs, scores = retriever.retrieve(q_tokens, k=min(len(corpus), 50), show_progress=False)
    full = np.full((len(queries), len(corpus)), -1e9, dtype=np.float32)
    for i in range(len(queries)):
        full[i, docs[i]] = scores[i]
    return full


def top_k(q_emb: np.ndarray, d_emb: np.ndarray, k: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    idx, val = [], []
    for s in range(0, len(q_emb), chunk):
        sims = q_emb[s : s + chunk] @ d_emb.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        ps = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-ps, axis=1)
        idx.append(np.take_along_axis(part, order, axis=1))
        val.append(np.take_along_axis(ps, order, axis=1))
    return np.concatenate(idx), np.concatenate(val)


# ---------------------------------------------------------------- task files


def build_wordnet(
    wordnet_dir: Path,
    encoder: MiniLM,
    out_dir: Path,
    *,
    n_train: int,
    n_test: int,
    k: int = 20,
    n_siblings: int = 4,
    corpus_size: int | None = None,
    seed: int = 0,
) -> dict:
    """Write wordnet_train.jsonl / wordnet_test.jsonl; return first-stage figures.

    ``corpus_size`` caps the document collection: every query's answer plus random other lemma
    groups up to that size (None: all ~76k; embedding them all takes ~25 CPU-minutes).
    """
    synsets = read_wordnet_nouns(wordnet_dir)
    sib = siblings(synsets)
    offsets = [o for o, s in synsets.items() if len(s["gloss"].split()) >= 3]
    rng = random.Random(seed)
    rng.shuffle(offsets)
    chosen = {"test": offsets[:n_test], "train": offsets[n_test : n_test + n_train]}
    corpus = sorted({lemma_doc(s) for s in synsets.values()})
    if corpus_size is not None and corpus_size < len(corpus):
        answers = {lemma_doc(synsets[o]) for offs in chosen.values() for o in offs}
        others = [d for d in corpus if d not in answers]
        random.Random(seed + 1).shuffle(others)
        corpus = sorted(answers | set(others[: max(corpus_size - len(answers), 0)]))
    d_emb = encoder.encode(corpus, name=f"wordnet_corpus_{len(corpus)}")
    stats: dict = {"corpus": len(corpus), "synsets": len(synsets)}
    for split, offs in chosen.items():
        queries = [synsets[o]["gloss"] for o in offs]
        q_emb = encoder.encode(queries)
        idx, val = top_k(q_emb, d_emb, k)
        rows, found = [], 0
        for o, q, ii, vv in zip(offs, queries, idx, val):
            pos = lemma_doc(synsets[o])
            docs = [corpus[i] for i in ii]
            if split == "train":
                negs = [d for d in docs if d != pos]
                sibs = [lemma_doc(synsets[s]) for s in sib[o]]
                sibs = [d for d in dict.fromkeys(sibs) if d != pos and d not in negs]
                # siblings come from all of WordNet, not only the capped corpus: still real words
                rows.append({"query": q, "pos": [pos], "neg": negs + sibs[:n_siblings]})
                found += pos in docs
            else:
                if pos not in docs:
                    continue  # the reranker can only reorder what the first stage found
                found += 1
                rows.append(
                    {
                        "query": q,
                        "docs": docs,
                        "labels": [int(d == pos) for d in docs],
                        "first_stage": [round(float(v), 5) for v in vv],
                    }
                )
        _write_jsonl(out_dir / f"wordnet_{split}.jsonl", rows)
        stats[f"{split}_queries"] = len(offs)
        stats[f"{split}_recall@{k}"] = found / len(offs)
        stats[f"{split}_rows"] = len(rows)
    return stats


def build_faq(
    faq_dir: Path,
    encoder: MiniLM,
    out_dir: Path,
    *,
    first_stage: str = "minilm",
    test_fraction: float = 1 / 3,
    k: int = 20,
    seed: int = 0,
) -> dict:
    """Write faq_train.jsonl / faq_test.jsonl, held out by section.

    A random third of the sections is held out. Training rows see only training sections: their
    query, positive and negatives (the first stage's top-k over the training answers), so no
    held-out question or answer reaches training. Held-out rows rank all answers.
    """
    sections = read_debian_faq(faq_dir)
    order = list(range(len(sections)))
    random.Random(seed).shuffle(order)
    test_idx = set(order[: round(len(sections) * test_fraction)])
    answers = [s["answer"] for s in sections]
    queries = [s["question"] for s in sections]
    if first_stage == "bm25":
        sims = bm25_scores(answers, queries)
    else:
        sims = encoder.encode(queries) @ encoder.encode(answers).T
    stats: dict = {"sections": len(sections), "test_sections": len(test_idx), "first_stage": first_stage}
    for split in ("train", "test"):
        rows, found, n = [], 0, 0
        for i, s in enumerate(sections):
            if (i in test_idx) != (split == "test"):
                continue
            n += 1
            pool = sims[i].copy()
            if split == "train":
                pool[list(test_idx)] = -np.inf  # held-out answers never appear in training rows
            top = [int(j) for j in np.argsort(-pool)[:k] if np.isfinite(pool[j])]
            docs = [answers[j] for j in top]
            found += i in top
            if split == "train":
                negs = [answers[j] for j in top if j != i]
                rows.append({"query": s["question"], "pos": [s["answer"]], "neg": negs})
            elif i in top:
                rows.append(
                    {
                        "query": s["question"],
                        "docs": docs,
                        "labels": [int(j == i) for j in top],
                        "first_stage": [round(float(sims[i, j]), 5) for j in top],
                    }
                )
        _write_jsonl(out_dir / f"faq_{split}.jsonl", rows)
        stats[f"{split}_queries"] = n
        stats[f"{split}_recall@{k}"] = found / max(n, 1)
        stats[f"{split}_rows"] = len(rows)
    return stats


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------- reward variant


def build_preferences(task_dir: Path, *, name: str = "wordnet", seed: int = 0) -> dict:
    """Preference pairs from a rerank task: (question, its answer ≻ a hard negative answer).

    The prompt asks for the word of a definition; the chosen response is the right lemma group,
    the rejected one a first-stage hard negative: for training rows one of the three hardest
    (drawn at random, so the model sees several), for held-out rows the hardest (the first
    stage's best wrong candidate). Held-out pairs come from held-out queries only.
    """
    rng = random.Random(seed)
    question = "Which word or phrase is defined as: {}?" if name == "wordnet" else "{}"
    stats = {}
    for split in ("train", "test"):
        rows = [json.loads(x) for x in (Path(task_dir) / f"{name}_{split}.jsonl").open()]
        pairs = []
        for r in rows:
            if split == "train":
                if not r["neg"]:
                    continue
                chosen, rejected = r["pos"][0], rng.choice(r["neg"][:3])
            else:
                chosen = r["docs"][r["labels"].index(1)]
                rejected = next(d for d, label in zip(r["docs"], r["labels"]) if not label)
            pairs.append({"prompt": question.format(r["query"]), "chosen": chosen, "rejected": rejected})
        _write_jsonl(Path(task_dir) / f"{name}_pref_{split}.jsonl", pairs)
        stats[f"{split}_pairs"] = len(pairs)
    return stats
