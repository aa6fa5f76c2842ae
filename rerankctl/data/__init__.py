"""Data: formats, validation, converters, the reranker prompt, sampling, datasets, collators, synth."""
