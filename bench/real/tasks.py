"""Build the real rerank tasks of bench/real from WordNet 3.0 and the Debian FAQ.

WordNet (nouns): query = a synset's gloss (its definition, without the quoted examples, which
often contain the word itself), document = a synset's lemma group ("dog, domestic dog, Canis
familiaris"). The corpus is every distinct noun lemma group (~70k). Hard negatives are the
first stage's other top-k candidates plus the synset's siblings (co-hyponyms of its hypernym).

Debian FAQ: query = a section's question (its heading), document = a section's answer text.
The held-out split is by chapter, so no section (and no question) is shared with training.

A first stage (MiniLM bi-encoder or BM25) retrieves the top-k documents of every query; train
rows are ``{"query", "pos", "neg"}`` (negatives in first-stage order, hardest first), held-out rows
``{"query", "docs", "labels", "first_stage"}`` (docs in first-stage order with their scores).
"""

from __future__ import annotations

import gzip
import html
import json
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
    """Sections of the Debian FAQ HTML: {"chapter", "question", "answer"}."""
    sections = []
    for page in sorted(Path(faq_dir).glob("*.html")):
        text = page.read_text("utf-8", errors="replace")
        parts = re.split(r"<h3[^>]*>(.*?)</h3>", text, flags=re.S)
        for i in range(1, len(parts) - 1, 2):
            q = _clean(parts[i])
            q = re.sub(r"^[\d.]+\s*", "", q)
            a = _clean(re.split(r"<h[1-3][^>]*>", parts[i + 1])[0])
            if q and len(a) > 40:
                sections.append({"chapter": page.stem, "question": q, "answer": a})
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
            np.save(path, emb)
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
    seed: int = 0,
) -> dict:
    """Write wordnet_train.jsonl / wordnet_test.jsonl; return first-stage figures."""
    synsets = read_wordnet_nouns(wordnet_dir)
    sib = siblings(synsets)
    corpus = sorted({lemma_doc(s) for s in synsets.values()})
    d_emb = encoder.encode(corpus, name=f"wordnet_corpus_{len(corpus)}")
    offsets = [o for o, s in synsets.items() if len(s["gloss"].split()) >= 3]
    rng = random.Random(seed)
    rng.shuffle(offsets)
    chosen = {"test": offsets[:n_test], "train": offsets[n_test : n_test + n_train]}
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
    faq_dir: Path, encoder: MiniLM, out_dir: Path, *, first_stage: str = "minilm", seed: int = 0
) -> dict:
    """Write faq_train.jsonl / faq_test.jsonl split by chapter; documents are all answers."""
    sections = read_debian_faq(faq_dir)
    answers = [s["answer"] for s in sections]
    chapters = sorted({s["chapter"] for s in sections})
    rng = random.Random(seed)
    rng.shuffle(chapters)
    test_ch, n = set(), 0
    for ch in chapters:  # about a third of the sections held out, whole chapters at a time
        if n >= len(sections) / 3:
            break
        test_ch.add(ch)
        n += sum(s["chapter"] == ch for s in sections)
    queries = [s["question"] for s in sections]
    if first_stage == "bm25":
        sims = bm25_scores(answers, queries)
    else:
        sims = encoder.encode(queries) @ encoder.encode(answers).T
    k = min(20, len(answers))
    stats: dict = {"sections": len(sections), "test_chapters": sorted(test_ch)}
    for split in ("train", "test"):
        rows = []
        for i, s in enumerate(sections):
            if (s["chapter"] in test_ch) != (split == "test"):
                continue
            order = np.argsort(-sims[i])[:k]
            docs = [answers[j] for j in order]
            if split == "train":
                rows.append(
                    {
                        "query": s["question"],
                        "pos": [s["answer"]],
                        "neg": [d for d in docs if d != s["answer"]],
                    }
                )
            elif s["answer"] in docs:
                rows.append(
                    {
                        "query": s["question"],
                        "docs": docs,
                        "labels": [int(d == s["answer"]) for d in docs],
                        "first_stage": [round(float(sims[i, j]), 5) for j in order],
                    }
                )
        _write_jsonl(out_dir / f"faq_{split}.jsonl", rows)
        stats[f"{split}_rows"] = len(rows)
    return stats


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


_ = gzip  # the FAQ text is also shipped gzipped; HTML is what we parse
