"""Configuration: pydantic models per command, TOML presets, merging and printing.

Merge order is ``defaults < preset < flags``. See :func:`rerankctl.config.presets.resolve_config`.
"""
