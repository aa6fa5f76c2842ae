"""Evaluation: retrieval metrics (numpy), local and HTTP rerank runners, MTEB adapter, reports.

Heavy dependencies are imported inside the functions that need them; importing a module
here never imports torch, transformers or mteb at module level unless it says so.
"""
