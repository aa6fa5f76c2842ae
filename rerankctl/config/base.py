"""The base class of every command's configuration model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from rerankctl.config.trackers import check_tracker_names

# The help panels of the train commands (``cli_sections`` of the config classes name them).
MODEL = "Model and memory"
DATA = "Data"
LOSS = "Loss"
OPTIM = "Optimisation"
RUNS = "Runs and logging"
BUILTIN = "Built-in data"


class StrictConfig(BaseModel):
    """A config model that rejects unknown keys and validates on assignment.

    Every field carries a ``description`` (shown by ``--help`` and in ``--print-config``
    comments), in the spirit of TRL's config dataclasses.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    #: field name -> the ``--help`` panel that starts at that field (later fields stay in it).
    cli_sections: ClassVar[dict[str, str]] = {}

    def unused_fields(self) -> set[str]:
        """Fields this config will not read (an eval-only run's base model): the pre-flight skips them."""
        return set()

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict (paths as strings, None values dropped for TOML)."""
        return self.model_dump(mode="json")


def cli(
    *flags: str,
    off: str | None = None,
    hidden: tuple[str, ...] = (),
    hidden_off: tuple[str, ...] = (),
    metavar: str | None = None,
    aliases: str | None = None,
    prefix: str | None = None,
    check: str | None = None,
    expose: bool = True,
    envvar: str | None = None,
) -> dict[str, Any]:
    """A field's command-line spelling, where the default one (``n_docs`` -> ``--n-docs``) will not do.

    Used as ``Field(..., json_schema_extra=cli("--lr"))``; rerankctl/cli/_options.py reads it.

    Args:
        flags: the option's names (first is the canonical one; a short flag like ``-o`` may follow).
        off: the negative name of a boolean flag (default ``--no-<name>``).
        hidden: older spellings still accepted but not shown (``--batch`` for ``--batch-size``).
        hidden_off: older spellings of the negative flag (``--no-lora`` for ``--full``).
        metavar: what ``--help`` shows for the value (default by type: INTEGER, FLOAT, TEXT).
        aliases: the key of config/aliases.py's VALUE_ALIASES for a choice (default: the field name).
        prefix: for a nested model, what its fields' flags start with (default ``<field>-``;
            ``""`` puts them at the top: ``distributed.gpus`` -> ``--gpus``).
        check: ``model``, ``dataset`` or ``resume``: the value is a path or Hub id that
            config/preflight.py checks before anything heavy loads; ``processor``: a
            ``FILE:CLASS`` the pre-flight imports (data/processor.py).
        expose: False for preset-only fields (size tables and the like).
        envvar: an environment variable that sets the option too (shown in ``--help``), for
            secrets that should not sit in the shell history (``RERANKCTL_API_KEY``).
    """
    spec: dict[str, Any] = {}
    if flags:
        spec["flags"] = list(flags)
    if off:
        spec["off"] = off
    if hidden:
        spec["hidden"] = list(hidden)
    if hidden_off:
        spec["hidden_off"] = list(hidden_off)
    if metavar:
        spec["metavar"] = metavar
    if aliases:
        spec["aliases"] = aliases
    if prefix is not None:
        spec["prefix"] = prefix
    if check:
        spec["check"] = check
    if not expose:
        spec["expose"] = False
    if envvar:
        spec["envvar"] = envvar
    return {"cli": spec}


# The same flag for the same thing in every train command (older spellings stay hidden aliases).
OUTPUT_FLAGS = cli("--output", "-o", hidden=("--output-dir",), metavar="PATH")
TAG_FLAGS = cli("--tag", hidden=("--tags",))
LR_FLAGS = cli("--lr", hidden=("--learning-rate",))
GRAD_ACCUM_FLAGS = cli("--grad-accum", hidden=("--gradient-accumulation-steps",))
BATCH_FLAGS = cli("--batch-size", hidden=("--batch",))
EVAL_BATCH_FLAGS = cli("--eval-batch-size", hidden=("--eval-batch",))
LORA_FLAGS = cli("--lora", off="--full", hidden_off=("--no-lora",))


def report_to_list(value: Any) -> Any:
    """``report_to`` as a list everywhere: ``"none"`` -> ``[]``, ``"wandb,tensorboard"`` -> two names."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        names = [part.strip() for item in value if isinstance(item, str) for part in item.split(",")]
        if all(isinstance(item, str) for item in value):
            return [name for name in names if name and name != "none"]
    return value


#: The trackers a run reports to: one list type in every config (a preset may still say ``"none"``);
#: unknown names are refused here (config/trackers.py), missing packages by the pre-flight checks.
ReportTo = Annotated[list[str], BeforeValidator(report_to_list), AfterValidator(check_tracker_names)]


def _processor_spec(value: Any) -> Any:
    """``FILE:CLASS`` with FILE made absolute when it exists (the run config then names it exactly).

    A missing file is reported by the pre-flight (``check="processor"``), which also imports it.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        return value
    file, sep, name = value.strip().rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise ValueError(
            f"{value!r} is not FILE:CLASS (a Python file and the class in it, e.g. my_proc.py:QA)"
        )
    path = Path(file).expanduser()
    return f"{path.resolve()}:{name}" if path.is_file() else value.strip()


#: ``--processor FILE:CLASS`` (rerankctl/data/processor.py): one type and one help text for every trainer.
ProcessorSpec = Annotated[str | None, BeforeValidator(_processor_spec)]
PROCESSOR_HELP = (
    "FILE:CLASS: a Python file and the class (or function) in it that turns each record of --data and "
    "--eval-data into rerankctl's format (return None to drop it); the Bradley-Terry tool's "
    "--custom_bt_dataset_path/--custom_bt_dataset_name. See rerankctl/data/processor.py."
)
PROCESSOR_FLAGS = cli(metavar="FILE:CLASS", check="processor")


def check_processor_sources(processor: str | None, *sources: str | None) -> None:
    """Refuse ``--processor`` when no user file would be read through it (a flag with no effect).

    The built-in data sets (``builtin:...``) are already in rerankctl's format and never go through it.
    """
    if processor and not any(s and not str(s).startswith("builtin:") for s in sources):
        raise ValueError(
            "processor applies to your data files (--data, --eval-data) and there is none: the built-in "
            "data is already in rerankctl's format; pass --data FILE or drop --processor"
        )
