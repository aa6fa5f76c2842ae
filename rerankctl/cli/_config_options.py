"""Shared helpers for commands that build a config from defaults < preset < flags."""

from __future__ import annotations

from typing import Any


def finish_config(
    model: Any, *, preset: str | None, overrides: dict[str, Any], command: str, print_config: bool
) -> Any:
    """Resolve the config; with ``--print-config`` print it as TOML and exit 0."""
    import typer

    from rerankctl.config.presets import config_to_toml, resolve_config

    cfg = resolve_config(model, preset=preset, overrides=overrides, command=command)
    if print_config:
        typer.echo(config_to_toml(cfg), nl=False)
        raise typer.Exit(0)
    return cfg


def split_csv(values: list[str] | None) -> list[str] | None:
    """``--target-modules q_proj,v_proj`` and repeated flags both become one list."""
    if not values:
        return None
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out
