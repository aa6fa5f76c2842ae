"""Where reward-model training data comes from: local files, hub datasets, the synth set.

* a local file in the preference format (JSONL/Parquet/CSV) is validated record by record;
* a local file in another tool's shape is converted on the fly with ``dataset_format``
  (``hh-rlhf``, ``stack-exchange-paired``, ``rm-static``, ``helpsteer3``, ``ultrafeedback``);
* a hub name (``Anthropic/hh-rlhf`` ...) is loaded with ``datasets`` and converted with the
  converter that matches its name (or parsed as preference records when none does);
* ``builtin:synth-preference`` is the synthetic set of :mod:`rerankctl.data.synth`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rerankctl.data.formats import PreferenceRecord, RecordError, parse_preference
from rerankctl.errors import DataError, DependencyError, NotFoundError

# Hub dataset -> converter name (lower-case match on the dataset id).
HUB_CONVERTERS = {
    "anthropic/hh-rlhf": "hh-rlhf",
    "lvwerra/stack-exchange-paired": "stack-exchange-paired",
    "dahoas/rm-static": "rm-static",
    "dahoas/full-hh-rlhf": "rm-static",
    "nvidia/helpsteer3": "helpsteer3",
    "huggingfaceh4/ultrafeedback_binarized": "ultrafeedback",
}


def _convert_rows(
    rows: Any, converter: Any, source: str, skip_invalid: bool, processor: Any = None
) -> tuple[list[PreferenceRecord], int]:
    records: list[PreferenceRecord] = []
    skipped = 0
    for line, obj in enumerate(rows, start=1):
        if processor is not None:  # a hub dataset's rows through --processor (data/processor.py)
            obj, failed = processor.apply(obj)
            if failed is not None:
                if not skip_invalid:
                    raise DataError(failed[0], failed[1], path=source, line=line) from None
                skipped += 1
                continue
            if obj is None:
                continue
        try:
            converted = converter.convert(obj) if converter is not None else [obj]
            records.extend(parse_preference(item) for item in converted)
        except RecordError as exc:
            if not skip_invalid:
                raise DataError(exc.message, exc.hint, path=source, line=line, field=exc.field) from None
            skipped += 1
    if not records:
        raise DataError(
            "no valid preference records", hint="check the data with `rerankctl data validate`", path=source
        )
    return records, skipped


def load_hub_preferences(
    name: str, split: str = "train", skip_invalid: bool = True, processor: Any = None
) -> tuple[list[PreferenceRecord], int]:
    """A hub preference dataset converted to records (rows the converter drops are counted).

    A ``processor`` takes the place of the built-in converter of a known hub dataset.
    """
    from rerankctl.data.converters import get_converter

    try:
        import datasets
    except ImportError:  # pragma: no cover - a core dependency
        raise DependencyError(
            "the `datasets` package is needed for hub datasets", hint="pip install datasets"
        ) from None
    converter_name = HUB_CONVERTERS.get(name.lower())
    converter = get_converter(converter_name) if converter_name and processor is None else None
    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for "not there / offline"
        raise NotFoundError(
            f"cannot load hub dataset {name!r} (split {split}): {type(exc).__name__}: {exc}",
            hint="check the name and network access, or convert a local copy with `rerankctl data convert`",
        ) from None
    return _convert_rows(rows, converter, f"{name}[{split}]", skip_invalid, processor)


def load_preferences(
    source: str,
    *,
    dataset_format: str | None = None,
    skip_invalid: bool = False,
    split: str = "train",
    synth_size: int = 400,
    seed: int = 42,
    max_chars: int = 0,
    processor: Any = None,
) -> tuple[list[PreferenceRecord], int]:
    """Records from ``source`` (see the module docstring) and the number of skipped records.

    ``processor`` (``FILE:CLASS``, data/processor.py) rewrites every row of a file or hub
    dataset first (then ``dataset_format``'s converter, when given, reads its output).
    """
    from rerankctl.config.reward import BUILTIN_SYNTH_PREFERENCE
    from rerankctl.data.processor import load_processor

    processor = load_processor(processor)

    if source == BUILTIN_SYNTH_PREFERENCE:
        from rerankctl.data.synth import synth_preference

        return [parse_preference(obj) for obj in _as_dicts(synth_preference(synth_size, seed=seed))], 0
    path = Path(source).expanduser()
    if path.exists():
        if dataset_format:
            from rerankctl.data.converters import get_converter
            from rerankctl.data.io import iter_rows

            converter = get_converter(dataset_format)
            rows = []
            for row in iter_rows(str(path), processor):
                if row.error is not None:
                    if not skip_invalid:
                        raise DataError(row.error, row.hint, path=str(path), line=row.line, field=row.field)
                    continue
                rows.append(row.obj)
            return _convert_rows(rows, converter, str(path), skip_invalid)
        from rerankctl.data.validate import ReadCounts, load_records

        counts = ReadCounts()
        out = load_records(
            str(path),
            kind="preference",
            skip_invalid=skip_invalid,
            max_chars=max_chars,
            counts=counts,
            processor=processor,
        )
        if counts.dropped:
            logging.getLogger(__name__).info("%s: the processor dropped %d record(s)", path, counts.dropped)
        if counts.cut:
            from rerankctl.data.limits import cut_event

            logging.getLogger(__name__).warning(cut_event(counts.cut, max_chars, str(path)))
        return out
    if source.startswith((".", "/", "~")) or source.endswith((".jsonl", ".json", ".parquet", ".csv")):
        raise NotFoundError(f"{source}: no such data file", hint="check the path")
    return load_hub_preferences(source, split=split, skip_invalid=True, processor=processor)


def _as_dicts(items: Any) -> list[dict]:
    """Synth generators may return records or dicts; the parser wants dicts."""
    out = []
    for item in items:
        out.append(item.to_json() if hasattr(item, "to_json") else item)
    return out
