"""rerankctl: train, serve and evaluate Qwen3 rerankers and reward models."""

__version__ = "0.1.0"
