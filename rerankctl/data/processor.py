"""User record processors: ``--processor FILE:CLASS`` turns any record shape into rerankctl's formats.

The Bradley-Terry reward tool let users point ``--custom_bt_dataset_path/--custom_bt_dataset_name``
at their own dataset class; here it is one flag on every ``data`` and ``train`` command. The
processor runs inside the one line reader (:func:`rerankctl.data.io.iter_rows`, the streaming
reader, the Arrow reader of :class:`~rerankctl.data.rerank_dataset.RerankDataset`), so
``data validate``, ``stats``, ``convert``, ``split``, ``sample`` and the trainers all see the same
records, with the same line numbers.

The interface (:class:`RecordProcessor`): ``FILE`` is a Python file, ``CLASS`` a name in it:

* a class, instantiated once without arguments, whose instances are callable
  (``__call__(record)``) or have ``process(record)``; or a plain function ``f(record)``;
* it gets each parsed record (a dict for JSONL/CSV/Parquet rows) and returns the record in
  one of the formats of DESIGN.md §4 (rerank ``query/pos/neg``, preference
  ``prompt/chosen/rejected``, VL ``id/query/image/response/human_ranking``), or ``None`` to drop it
  (dropped records are counted, never errors).

Example (``my_proc.py``)::

    class QA:
        def __call__(self, record):
            if not record.get("good"):
                return None  # dropped
            return {"query": record["q"], "pos": record["good"], "neg": record.get("bad", [])}

    rerankctl data validate raw.jsonl --processor my_proc.py:QA

Loading problems (no file, a syntax error, no such class) are a usage error before any data is
read; a processor that raises on a record or returns something that is not a dict is an error
*of that record* (file and line, the processor's own message), which ``--skip-invalid`` skips like
any bad record. Pure standard library: the CLI checks the flag before torch loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rerankctl.errors import UsageError

FLAG = "--processor"
_HINT = "expected FILE:CLASS, e.g. my_proc.py:MyProcessor (see `rerankctl data validate --help`)"


@runtime_checkable
class RecordProcessor(Protocol):
    """What ``--processor`` loads: called with one parsed record, returns a rerankctl record or None."""

    def __call__(self, record: Any) -> dict[str, Any] | None: ...


def split_spec(spec: str, flag: str = FLAG) -> tuple[Path, str]:
    """``FILE:CLASS`` as (absolute file, name); the file must exist (no import yet).

    Raises:
        UsageError: no ``:CLASS``, an empty name, or a missing file.
    """
    text = str(spec).strip()
    file, sep, name = text.rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise UsageError(f"{flag} {spec}: not FILE:CLASS", hint=_HINT)
    path = Path(file).expanduser()
    if not path.is_file():
        raise UsageError(
            f"{flag} {spec}: no such file {file}", hint="check the path of the processor's .py file"
        )
    return path.resolve(), name


def normalise_spec(spec: str | None, flag: str = FLAG) -> str | None:
    """``spec`` checked and made absolute (``/abs/my_proc.py:QA``), so a run config names the file exactly."""
    if spec is None or str(spec).strip() == "":
        return None
    path, name = split_spec(spec, flag)
    return f"{path}:{name}"


class Processor:
    """A loaded processor: ``apply(record)`` -> (record or None, error message or None).

    Pickles as its spec (it is loaded again from the file in a DataLoader worker).
    """

    def __init__(self, spec: str, fn: Callable[[Any], Any], digest: str) -> None:
        self.spec = spec
        self.fn = fn
        self.digest = digest  # sha256 of the file: part of every cache key, and of the run's events
        self.name = spec.rpartition(":")[2]

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return load_processor, (self.spec,)

    def __repr__(self) -> str:
        return f"Processor({self.spec!r})"

    def apply(self, record: Any) -> tuple[Any, tuple[str, str] | None]:
        """(the processed record, None), (None, None) to drop it, or (None, (why it failed, hint))."""
        try:
            out = self.fn(record)
        except Exception as exc:  # noqa: BLE001 - the user's code may raise anything: it is this record's error
            return None, (
                f"processor {self.name} raised {type(exc).__name__}: {exc}",
                "that is the processor's own message; fix it (or the record), or skip such records (--skip-invalid)",
            )
        if out is None or isinstance(out, dict):
            return out, None
        return None, (
            f"processor {self.name} returned {type(out).__name__}, expected a dict (the record) or None (drop it)",
            "return the record in rerankctl's format (DESIGN.md §4), or None to drop it",
        )


_loaded: dict[tuple[str, str, int], Processor] = {}


def load_processor(spec: str | Processor | None, flag: str = FLAG) -> Processor | None:
    """Import ``FILE`` and build ``CLASS`` (once per file version); None passes through.

    Raises:
        UsageError: the file is missing or fails to import, the name is not there, the class
            cannot be built without arguments, or the object is not callable.
    """
    if spec is None or isinstance(spec, Processor):
        return spec
    path, name = split_spec(spec, flag)
    full = f"{path}:{name}"
    mtime = path.stat().st_mtime_ns
    key = (str(path), name, mtime)
    if key in _loaded:
        return _loaded[key]
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    module_name = f"rerankctl_processor_{digest[:16]}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"{flag} {spec}: {path} is not a Python file", hint=_HINT)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user file may raise anything on import
        sys.modules.pop(module_name, None)
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        raise UsageError(
            f"{flag} {spec}: importing {path.name} failed{where}: {type(exc).__name__}: {exc}",
            hint="fix the processor file (run `python FILE` to see the full traceback)",
        ) from None
    if not hasattr(module, name):
        names = sorted(
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and (inspect.isclass(v) or callable(v))
        )
        names = [n for n in names if getattr(vars(module)[n], "__module__", None) == module_name]
        listed = ", ".join(names) or "none"
        raise UsageError(f"{flag} {spec}: {path.name} has no {name!r}", hint=f"names defined there: {listed}")
    fn = _callable(getattr(module, name), spec, flag)
    processor = Processor(full, fn, digest)
    _loaded[key] = processor
    return processor


def _callable(obj: Any, spec: str, flag: str) -> Callable[[Any], Any]:
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - the user's constructor
            raise UsageError(
                f"{flag} {spec}: {obj.__name__}() failed: {type(exc).__name__}: {exc}",
                hint="the class is built without arguments; read settings from the environment or a file",
            ) from None
    process = getattr(obj, "process", None)
    if callable(process):
        return process
    if callable(obj):
        return obj
    raise UsageError(
        f"{flag} {spec}: {type(obj).__name__} is neither callable nor has a process(record) method",
        hint="define __call__(self, record) -> dict | None",
    )


def describe(processor: Processor, dropped: int, source: str | os.PathLike) -> str:
    """The run-store event line for what the processor did to ``source``."""
    return (
        f"{source}: read through processor {processor.spec} (sha256 {processor.digest[:12]}); "
        f"{dropped} record(s) dropped by it"
    )
