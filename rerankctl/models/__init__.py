"""Models: the yes/no reranker scorer, tokenizers, tiny test models, reward heads, export."""
