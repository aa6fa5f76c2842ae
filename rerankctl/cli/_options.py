"""Command-line options built from a config model: each option is declared once, as a config field.

A ``train`` command's options are not written by hand. Every field of its pydantic config
(:mod:`rerankctl.config`) becomes one option, and the field says everything about it:

- the flag: ``n_docs`` -> ``--n-docs``; nested models are prefixed (``lora.r`` -> ``--lora-r``);
  ``json_schema_extra=cli("--lr")`` (:func:`rerankctl.config.base.cli`) renames it, adds a short
  flag, a negative flag for booleans, or hidden older spellings (``--batch`` for ``--batch-size``);
- the help text: the field's ``description``;
- the default shown by ``--help``: the field's default (with ``--preset NAME`` first on the line,
  the preset's value);
- the metavar and the choices: from the type (``Literal[...]`` -> ``[a|b|c]``, accepting the
  seed tool's spellings of config/aliases.py too; ``bool`` -> a flag pair with no metavar);
- the help panel: the ``cli_sections`` of the class that declares the field.

The option values reach the config only when given on the command line (click's parameter
source), so the merge stays defaults < preset < flags. Validation of choices happens while click
parses, before anything heavy is imported: ``--loss-type bogus`` exits 2 at once.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

import typer
from typer.core import TyperCommand

_SKIP = object()


@dataclass
class OptionSpec:
    """One command-line option of a config field."""

    key: str  # dotted config key: "lora.r"
    param: str  # Python parameter name: "lora__r"
    flags: list[str]
    annotation: Any  # the type Typer parses the value to
    default: Any
    help: str
    panel: str | None
    off: str | None = None  # negative flag of a boolean
    hidden: list[str] = field(default_factory=list)
    hidden_off: list[str] = field(default_factory=list)
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    alias_key: str | None = None
    repeatable: bool = False
    check: str | None = None  # model / dataset / resume / processor: checked before the run (preflight)
    envvar: str | None = None  # an environment variable that sets the option too
    bounds: dict[str, Any] = field(default_factory=dict)  # the field's ge/gt/le/lt (click range when asked)
    ranged: bool = False  # check the bounds while click parses (commands built with ranges=True)
    required: bool = False  # no default: a flag or a preset must give it (--help says so)
    own: bool = True  # declared by the command's own config class, not a shared base (listed first)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _sections(model: type) -> dict[str, str]:
    """``cli_sections`` of the model and its bases: field name -> panel that starts there."""
    out: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        out.update(getattr(klass, "cli_sections", None) or {})
    return out


def _is_config(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def option_specs(
    model: type, prefix: str = "", flag_prefix: str = "", panel: str | None = None, own: bool | None = None
) -> list[OptionSpec]:
    """The options of every command-line field of ``model`` (nested models included), in field order."""
    from pydantic_core import PydanticUndefined

    sections = _sections(model)
    own_names = set(vars(model).get("__annotations__", {}))
    specs: list[OptionSpec] = []
    for name, info in model.model_fields.items():
        panel = sections.get(name, panel)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        meta: dict[str, Any] = dict(extra.get("cli", {}))
        if meta.get("expose") is False:
            continue
        annotation = _unwrap_optional(info.annotation)
        key = f"{prefix}{name}"
        is_own = name in own_names if own is None else own
        if _is_config(annotation):
            inner = meta.get("prefix", f"{name}-")
            specs.extend(option_specs(annotation, f"{key}.", f"{flag_prefix}{inner}", panel, is_own))
            continue
        flag = "--" + (flag_prefix + name).replace("_", "-")
        default = info.default if info.default is not PydanticUndefined else None
        if info.default_factory is not None:
            default = info.default_factory()
        spec = OptionSpec(
            key=key,
            param=key.replace(".", "__"),
            flags=list(meta.get("flags", [flag])),
            annotation=annotation,
            default=default,
            help=info.description or "",
            panel=panel,
            off=meta.get("off"),
            hidden=list(meta.get("hidden", [])),
            hidden_off=list(meta.get("hidden_off", [])),
            metavar=meta.get("metavar"),
            alias_key=meta.get("aliases", key.rsplit(".", 1)[-1]),
            check=meta.get("check"),
            envvar=meta.get("envvar"),
            own=is_own,
            bounds=_bounds(info),
            required=info.is_required(),
        )
        if get_origin(annotation) is Literal:
            spec.choices = tuple(str(v) for v in get_args(annotation))
            spec.annotation = str
        elif get_origin(annotation) is list:
            spec.repeatable = True
            spec.annotation = list[str]
        elif annotation not in (bool, int, float, str):
            continue  # dicts and other shapes are preset-only
        specs.append(spec)
    return specs


def _bounds(info: Any) -> dict[str, Any]:
    """A field's ``ge``/``le`` (and an int's ``gt``/``lt``) as click's ``min``/``max``.

    Typer has no open ranges, so a float's ``gt``/``lt`` is left to pydantic (a config error).
    """
    out: dict[str, Any] = {}
    is_int = _unwrap_optional(info.annotation) is int
    for item in info.metadata:
        if getattr(item, "ge", None) is not None:
            out["min"] = item.ge
        if getattr(item, "le", None) is not None:
            out["max"] = item.le
        if is_int and getattr(item, "gt", None) is not None:
            out["min"] = item.gt + 1
        if is_int and getattr(item, "lt", None) is not None:
            out["max"] = item.lt - 1
    return out


def _choice_parser(spec: OptionSpec) -> Callable[[str], str]:
    """Parse a choice, accepting the seed tool's spellings (config/aliases.py) as their canonical names."""

    def parse(value: str) -> str:
        from rerankctl.config.aliases import canonical

        name = canonical(spec.alias_key or "", value)
        if name in spec.choices:
            return name
        what = spec.key.rsplit(".", 1)[-1].replace("_", " ")
        raise typer.BadParameter(f"unknown {what} {value!r}; use one of {', '.join(spec.choices)}.")

    return parse


def _off_flag(spec: OptionSpec) -> str:
    return spec.off or "--no-" + spec.flags[0][2:]


def _typer_option(spec: OptionSpec) -> Any:
    kwargs: dict[str, Any] = {"help": spec.help, "rich_help_panel": spec.panel}
    if spec.envvar:
        kwargs.update(envvar=spec.envvar, show_envvar=True)
    if spec.annotation is bool:
        decls = [f"{spec.flags[0]}/{_off_flag(spec)}", *spec.flags[1:]]
        return typer.Option(*decls, **kwargs)
    if spec.choices:
        kwargs["parser"] = _choice_parser(spec)
        # a long list wraps badly in the metavar column; the description lists those choices
        kwargs["metavar"] = "[" + "|".join(spec.choices) + "]" if len(spec.choices) <= 5 else "NAME"
        kwargs["autocompletion"] = lambda incomplete="": [c for c in spec.choices if c.startswith(incomplete)]
    else:
        kwargs["metavar"] = spec.metavar or _METAVARS.get(spec.annotation, "TEXT")
        if spec.ranged and spec.annotation in (int, float):
            kwargs.update(spec.bounds)
    if spec.repeatable:
        kwargs["help"] = f"{spec.help} Repeat the flag or separate with commas."
    if spec.required:  # not click's required=True: a --preset file may give the value instead
        kwargs["help"] += " (required)"
    return typer.Option(*spec.flags, **kwargs)


#: The order of the help panels (the rest follow).
PANEL_ORDER = [
    None,
    "Options",
    "What to evaluate",  # eval, eval reward
    "Model and scoring",  # eval, rerank, serve (config/scoring.py)
    "Model and memory",
    "Data",
    "Loss",
    "RL objective",
    "Optimisation",
    "Runs and logging",
]

_METAVARS = {int: "INTEGER", float: "FLOAT", str: "TEXT", list[str]: "TEXT"}


def _parameter(spec: OptionSpec) -> inspect.Parameter:
    annotation = Annotated[spec.annotation | None, _typer_option(spec)]  # type: ignore[valid-type]
    return inspect.Parameter(
        spec.param, inspect.Parameter.KEYWORD_ONLY, default=spec.default, annotation=annotation
    )


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}__")
        else:
            yield f"{prefix}{key}", value


def preset_parameter(command: str) -> inspect.Parameter:
    """``--preset``: the built-in presets of this command only, listed in the help and completed."""
    from rerankctl.config.presets import available_presets

    names = list(available_presets(command))

    def _preset_defaults(ctx: typer.Context, value: str | None) -> str | None:
        """``--preset X --help`` shows the preset's values as the defaults (click's default_map)."""
        if value and not ctx.resilient_parsing:
            from rerankctl.config.presets import load_preset

            _, values = load_preset(value, command)
            ctx.default_map = {**(ctx.default_map or {}), **dict(_flatten(values))}
        return value

    def complete(incomplete: str = "") -> list[str]:
        return [n for n in names if n.startswith(incomplete)]

    option = typer.Option(
        "--preset",
        help=f"Preset name ({', '.join(names) or 'none built in'}) or a TOML file; flags override it.",
        metavar="NAME|PATH",
        is_eager=True,
        callback=_preset_defaults,
        autocompletion=complete,
    )
    return inspect.Parameter(
        "preset", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[str | None, option]
    )


def argument(name: str, annotation: Any, help: str) -> inspect.Parameter:
    """A positional argument of a config command (``rerank``'s documents), passed to ``run`` by name."""
    option = typer.Argument(help=help, show_default=False)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[annotation | None, option]
    )


PRINT_CONFIG = inspect.Parameter(
    "print_config",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[
        bool, typer.Option("--print-config", help="Print the merged config as TOML and exit.")
    ],
)


class ConfigCommand(TyperCommand):
    """A command built from a config: rewrites the hidden older spellings of its flags before parsing."""

    flag_aliases: dict[str, str] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, apply_flag_aliases(args, self.flag_aliases))


def apply_flag_aliases(
    args: list[str], aliases: dict[str, str], stop_words: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """``args`` with hidden older flag spellings replaced, up to ``--`` or a subcommand in ``stop_words``."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--" or arg in stop_words:
            return out + list(args[i:])
        flag, eq, value = arg.partition("=")
        out.append(aliases.get(flag, flag) + eq + value if flag.startswith("--") else arg)
    return out


def _split_csv(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def given_overrides(ctx: typer.Context, specs: list[OptionSpec], values: dict[str, Any]) -> dict[str, Any]:
    """``{config key: value}`` of the options given on the command line (defaults and presets stay out)."""
    from typer._click.core import ParameterSource

    out: dict[str, Any] = {}
    for spec in specs:
        if ctx.get_parameter_source(spec.param) not in (
            ParameterSource.COMMANDLINE,
            ParameterSource.ENVIRONMENT,
        ):
            continue
        value = values[spec.param]
        out[spec.key] = _split_csv(value) if spec.repeatable else value
    return out


def _panel_rank(spec: OptionSpec) -> tuple[int, bool]:
    """Panels in PANEL_ORDER; within one, the command's own options before the shared ones."""
    return (PANEL_ORDER.index(spec.panel) if spec.panel in PANEL_ORDER else 99, not spec.own)


def preflight(cfg: Any, specs: list[OptionSpec]) -> Any:
    """Paths, Hub ids and precision checked before the run starts (and before torch loads).

    Relative model/data paths come back resolved (``runs/x/final`` under $RERANKCTL_HOME).
    """
    from rerankctl.config.preflight import check_precision, check_ref
    from rerankctl.config.trackers import check_trackers_installed

    updates: dict[str, Any] = {}
    unused = cfg.unused_fields() if hasattr(cfg, "unused_fields") else set()
    for spec in specs:
        if spec.check == "processor":
            value = getattr(cfg, spec.key)
            if value is not None:  # imported now: a bad FILE:CLASS fails before torch and the run
                from rerankctl.data.processor import load_processor

                updates[spec.key] = load_processor(value, spec.flags[0]).spec
        elif spec.check and "." not in spec.key and spec.key not in unused:
            value = getattr(cfg, spec.key)
            hint = " (`builtin:tiny-qwen3` is a built-in model)" if spec.check == "model" else ""
            checked = check_ref(value, spec.flags[0], spec.check, offline_hint=hint)
            if checked != value:
                updates[spec.key] = checked
    check_trackers_installed(getattr(cfg, "report_to", None) or [])
    dist = getattr(cfg, "distributed", None)
    check_precision(getattr(cfg, "bf16", False), getattr(cfg, "fp16", False), getattr(dist, "gpus", None))
    return cfg.model_copy(update=updates) if updates else cfg


def _flag_errors(exc: Any, specs: list[OptionSpec]) -> Any:
    """A config error about a field given as a flag names the flag (``--max-length``, not ``max_length``)."""
    from rerankctl.errors import ConfigError

    field = getattr(exc, "field", None)
    spec = next((s for s in specs if s.key == field), None)
    if spec is None:
        return exc
    if exc.message.endswith("Field required"):
        return ConfigError(f"missing option '{spec.flags[0]}'", hint=f"{spec.flags[0]}: {spec.help}")
    message = exc.message.replace(f"field '{field}': ", f"field '{field}' ({spec.flags[0]}): ")
    return ConfigError(message, hint=exc.hint)


def config_callback(
    model: type,
    *,
    command: str,
    run: Callable[..., None],
    doc: str,
    name: str,
    finish: Callable[[Any, dict[str, Any]], Any] | None = None,
    extra: tuple[inspect.Parameter, ...] = (),
    presets: bool = True,
    before: Callable[[typer.Context, dict[str, Any]], bool] | None = None,
    ranges: bool = False,
) -> tuple[Callable[..., None], list[OptionSpec], dict[str, str]]:
    """The Typer callback of a config command, its option specs, and its hidden flag aliases.

    ``presets=False`` leaves out ``--preset``/``--print-config`` (commands with no preset);
    ``ranges=True`` has click check the fields' bounds (``ge=16`` -> ``--max-length 8`` is a usage
    error naming the flag, and ``--help`` shows ``x>=16``);
    ``before(ctx, values)`` returning True ends the callback before the config is built (a group
    whose subcommand runs instead). ``run`` gets ``ctx=`` too when it names a ``ctx`` parameter.
    """
    specs = sorted(option_specs(model), key=_panel_rank)
    for spec in specs:
        spec.ranged = ranges
    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *((preset_parameter(command), PRINT_CONFIG) if presets else ()),
        *extra,
        *(_parameter(s) for s in specs),
    ]
    wants_ctx = "ctx" in inspect.signature(run).parameters

    def callback(ctx: typer.Context, **values: Any) -> None:
        from rerankctl.config.presets import config_to_toml, resolve_config
        from rerankctl.errors import ConfigError

        if before is not None and before(ctx, values):
            return
        overrides = given_overrides(ctx, specs, values)
        try:
            cfg = resolve_config(model, preset=values.get("preset"), overrides=overrides, command=command)
        except ConfigError as exc:
            raise _flag_errors(exc, specs) from None
        if finish is not None:
            cfg = finish(cfg, overrides)
        if values.get("print_config"):
            typer.echo(config_to_toml(cfg), nl=False)
            raise typer.Exit(0)
        cfg = preflight(cfg, specs)
        run(cfg, **{p.name: values[p.name] for p in extra}, **({"ctx": ctx} if wants_ctx else {}))

    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__doc__ = doc
    callback.__name__ = name.replace("-", "_")
    aliases = {old: s.flags[0] for s in specs for old in s.hidden}
    aliases.update({old: _off_flag(s) for s in specs for old in s.hidden_off})
    return callback, specs, aliases


def register_config_command(
    app: typer.Typer,
    name: str,
    model: type,
    *,
    command: str,
    run: Callable[..., None],
    doc: str,
    finish: Callable[[Any, dict[str, Any]], Any] | None = None,
    extra: tuple[inspect.Parameter, ...] = (),
    presets: bool = True,
    ranges: bool = False,
    base: type[ConfigCommand] | None = None,
) -> list[OptionSpec]:
    """Add ``name`` to ``app``: one option per field of ``model``, then ``run(cfg, **extra values)``.

    ``finish(cfg, overrides)`` may adjust the resolved config (size profiles, cross-flag checks)
    before ``--print-config`` prints it. ``base``: a :class:`ConfigCommand` subclass to build on
    (one that rewrites more of the arguments, like ``eval parity``'s space-separated ``--endpoints``).
    """
    callback, specs, aliases = config_callback(
        model, command=command, run=run, doc=doc, name=name, finish=finish, extra=extra, presets=presets,
        ranges=ranges,
    )  # fmt: skip
    cls = type(f"{callback.__name__}_command", (base or ConfigCommand,), {"flag_aliases": aliases})
    app.command(name, cls=cls)(callback)
    return specs
