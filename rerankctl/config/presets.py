"""TOML presets and the defaults < preset < flags merge.

A preset is a TOML file whose keys are the fields of one command's config model
(nested tables for nested models). An optional ``[preset]`` table describes it;
write it last, since TOML puts every key after a table header into that table::

    n_docs = 16              # 1 positive + 15 hard negatives
    [lora]
    r = 32
    [preset]
    command = "train sft"
    description = "Qwen3-4B, LoRA r=32, InfoNCE; one 80 GB GPU"

Presets are found by name in the repository's top-level ``presets/`` folder
(shipped inside the package in the wheel) or given as a path. Every other key must be a field of the model; unknown
keys and wrong types are rejected with the file and the key named.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rerankctl.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _presets_dir() -> Path:
    # Installed from a wheel: `presets/` is shipped inside the package (hatch force-include);
    # from a checkout (editable install, PYTHONPATH): it is the repository's top-level folder.
    package = Path(__file__).resolve().parent.parent
    inside = package / "presets"
    return inside if inside.is_dir() else package.parent / "presets"


PRESETS_DIR = _presets_dir()
META_TABLE = "preset"

T = TypeVar("T")


def available_presets(command: str | None = None) -> dict[str, str]:
    """Built-in presets ``{name: description}``, optionally only those for ``command``."""
    out: dict[str, str] = {}
    for path in sorted(PRESETS_DIR.glob("*.toml")):
        try:
            meta = tomllib.loads(path.read_text("utf-8")).get(META_TABLE, {})
        except tomllib.TOMLDecodeError:
            continue
        if command is None or meta.get("command") == command:
            out[path.stem] = meta.get("description", "")
    return out


def find_preset(name_or_path: str) -> Path:
    """Resolve a preset name (``qwen3_4b_lora``) or a path to a TOML file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".toml" or candidate.is_file() or "/" in name_or_path:
        if not candidate.is_file():
            raise ConfigError("preset file does not exist", hint="check the path", path=str(candidate))
        return candidate
    builtin = PRESETS_DIR / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    names = ", ".join(available_presets()) or "none"
    raise ConfigError(f"unknown preset {name_or_path!r}", hint=f"built-in presets: {names}")


def load_preset(name_or_path: str, command: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Read a preset; returns its path and its values (without the ``[preset]`` table)."""
    path = find_preset(name_or_path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", hint="fix the syntax", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    meta = data.pop(META_TABLE, {})
    if command and meta.get("command") and meta["command"] != command:
        raise ConfigError(
            f"preset is for `rerankctl {meta['command']}`, not `rerankctl {command}`",
            hint=f"presets for {command}: {', '.join(available_presets(command)) or 'none'}",
            path=str(path),
        )
    return path, data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; nested tables merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _validation_error(exc: Any, source: str) -> ConfigError:
    """Turn the first pydantic error into a one-line ConfigError naming the key."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err.get("loc", ())) or None  # None: a check across fields
    if err.get("type") == "extra_forbidden":
        return ConfigError(
            "unknown key", hint="check the spelling; `--print-config` lists every key", path=source, field=key
        )
    got = err.get("input")
    got_text = f" (got {got!r})" if not isinstance(got, Mapping) else ""
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return ConfigError(f"{message}{got_text}", hint="fix the value", path=source, field=key)


def resolve_config(
    model: type[T],
    *,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    command: str | None = None,
) -> T:
    """Build a config: model defaults, then the preset, then non-None flag values.

    Args:
        model: the pydantic config class (a :class:`~rerankctl.config.base.StrictConfig`).
        preset: a preset name or path.
        overrides: flag values; ``None`` means "not given" and is skipped. Dotted keys
            (``"lora.r"``) address nested models.
        command: the command name, to reject presets written for another command.
    """
    from pydantic import ValidationError

    values: dict[str, Any] = {}
    source = "defaults"
    if preset:
        path, preset_values = load_preset(preset, command)
        source = str(path)
        try:
            model.model_validate(preset_values)  # report preset problems against the preset file
        except ValidationError as exc:
            raise _validation_error(exc, source) from None
        values = preset_values
    flags: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = flags
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return model.model_validate(deep_merge(values, flags))
    except ValidationError as exc:
        raise _validation_error(exc, "command-line flags" if flags else source) from None


def _drop_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def config_to_toml(config: Any) -> str:
    """The merged config as TOML (``None`` values are left out: TOML has no null)."""
    import tomli_w

    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else dict(config)
    return tomli_w.dumps(_drop_none(data))
