"""How options read in ``--help``: flags take no metavar, values read INTEGER/FLOAT/TEXT/PATH or a choice list.

Typer 0.29 prints its own type labels in angle brackets for every option, flags included
(``--json <bool>`` reads as if it took a value; ``--tag <list[str]>``). Click's conventions are
what users know from every other tool: a flag shows nothing, a value shows an upper-case metavar
(``INTEGER``, ``FLOAT``, ``TEXT``, ``PATH``), a choice shows ``[a|b|c]``, a repeatable option adds
``...``. :func:`install` swaps Typer's label for these once, for every command of the app, so no
command has to set a metavar by hand. Options that set ``metavar=`` keep it.
"""

from __future__ import annotations

from typing import Any

_PLAIN = {
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "FLOAT",
    "float range": "FLOAT",
    "str": "TEXT",
    "bool": "BOOLEAN",
    "path": "PATH",
    "file": "PATH",
    "directory": "PATH",
    "uuid": "UUID",
    "datetime": "DATETIME",
}


def plain_metavar(label: str) -> str:
    """Typer's ``<int>`` / ``<list[str]>`` / ``<a|b>`` label as click spells it: ``INTEGER``, ``TEXT...``, ``[a|b]``."""
    inner = label.strip("<>")
    repeated = inner.startswith("list[") and inner.endswith("]")
    if repeated:
        inner = inner[5:-1]
    if "|" in inner:
        text = f"[{inner}]"
    else:
        text = _PLAIN.get(inner, inner.upper())
    return text + ("..." if repeated else "")


def _display_type_rich(self: Any, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None  # a flag takes no value, so its help row shows none
    if self.metavar is not None:
        return self.metavar
    label = self.display_type(ctx)
    if label is None:
        return None
    text = plain_metavar(str(label))
    if self.nargs != 1 and not text.endswith("..."):
        text += "..."
    return text


def _argument_type_rich(self: Any, ctx: Any) -> str | None:
    label = self.display_type(ctx)
    return None if label is None else plain_metavar(str(label))


def _argument_usage_name(self: Any) -> str:
    # click's usage spelling: `rerankctl data convert [OPTIONS] FILE`, not `{file}`
    name = self.metavar or (self.name or "").upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def suggest(exc: Any, typo: str, names: list[str]) -> None:
    """Add "Did you mean 'train'?" to a usage error about ``typo`` (for groups that load lazily:
    Typer suggests only from the commands loaded so far)."""
    import difflib

    matches = difflib.get_close_matches(typo, names)
    if matches and "Did you mean" not in exc.message:
        exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"


def install() -> None:
    """Use the click-style metavars in every ``--help`` of the app (idempotent)."""
    from typer.core import TyperArgument, TyperOption

    TyperOption.display_type_rich = _display_type_rich  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_type_rich  # type: ignore[method-assign]
    TyperArgument._usage_display_name = _argument_usage_name  # type: ignore[method-assign]
