"""Side-by-side views of several runs: config differences and final metrics (for `runs compare`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rerankctl.store.models import Run

MISSING = object()  # a key a run's config does not have (distinct from a None value)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"lora": {"r": 8}}`` -> ``{"lora.r": 8}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_table(runs: Sequence[Run], only_different: bool = True) -> dict[str, list[Any]]:
    """``{dotted key: [value per run]}``, `MISSING` where a run lacks the key.

    With ``only_different`` just the keys whose values are not all equal.
    """
    flat = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    table = {}
    for key in keys:
        values = [f.get(key, MISSING) for f in flat]
        if only_different and all(_same(v, values[0]) for v in values[1:]):
            continue
        table[key] = values
    return table


def _same(a: Any, b: Any) -> bool:
    return a is b or (a is not MISSING and b is not MISSING and a == b)


def metrics_table(
    latest: Sequence[Mapping[str, tuple[int, float]]],
) -> dict[str, list[tuple[int, float] | None]]:
    """``{metric: [(step, value) or None per run]}`` from each run's `latest_metrics`."""
    keys = sorted(set().union(*latest)) if latest else []
    return {k: [m.get(k) for m in latest] for k in keys}
