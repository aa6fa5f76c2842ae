"""`rerankctl data`: validate, stats, convert, split, sample and synth data files.

Thin: parses options, calls :mod:`rerankctl.data`, prints. Everything beyond Typer and
the standard library is imported inside the commands (``rerankctl --help`` stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

KIND_HELP = "Data kind: rerank, preference or vl (default: detected from the first record)."
# The same text as the train commands' --processor (data/processor.py holds it; pure Python).
PROCESSOR_HELP = (
    "FILE:CLASS: a Python file and the class (or function) in it that turns each record into "
    "rerankctl's format (None drops it); every record is read through it. See data/processor.py."
)
Processor = Annotated[str | None, typer.Option("--processor", metavar="FILE:CLASS", help=PROCESSOR_HELP)]


def _load(processor: str | None):
    """The processor loaded now, so a bad FILE:CLASS fails before any data is read."""
    if processor is None:
        return None
    from rerankctl.data.processor import load_processor

    return load_processor(processor)


def _print_json(obj: object) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def validate(
    file: Annotated[Path, typer.Argument(help="JSONL, JSON, Parquet, CSV or TSV file.")],
    kind: Annotated[str | None, typer.Option("--kind", help=KIND_HELP)] = None,
    max_errors: Annotated[int, typer.Option("--max-errors", help="How many errors to list.")] = 20,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Succeed even with bad records (count them; see --output).")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the valid records here (atomically).")
    ] = None,
    check_images: Annotated[
        bool,
        typer.Option("--check-images/--no-check-images", help="For VL data: check that every image exists."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    processor: Processor = None,
) -> None:
    """Check every record; list the first errors with line and field; exit 2 when any is bad."""
    from rerankctl.data.validate import validate_file

    report = validate_file(
        file,
        kind,
        max_errors=max_errors,
        output=output,
        check_images=check_images,
        processor=_load(processor),
    )
    if as_json:
        _print_json(report.to_json())
    else:
        typer.echo(
            f"{file}: {report.kind}, {report.total} records, {report.valid} valid, {report.invalid} invalid"
            + (f", {report.dropped} dropped by the processor" if processor else "")
        )
        for error in report.errors:
            typer.echo(f"  {error.message}" + (f" (hint: {error.hint})" if error.hint else ""))
        if report.invalid > len(report.errors):
            typer.echo(f"  ... and {report.invalid - len(report.errors)} more")
        if output is not None:
            typer.echo(f"wrote {report.written} valid records to {output}")
    if report.invalid and not skip_invalid:
        raise typer.Exit(2)


def stats(
    file: Annotated[Path, typer.Argument(help="The data file.")],
    kind: Annotated[str | None, typer.Option("--kind", help=KIND_HELP)] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            help="Tokenizer or model dir, hub name, or `qwen3`: adds prompt token-length percentiles.",
        ),
    ] = None,
    max_length: Annotated[int, typer.Option("--max-length", help="Count prompts longer than this.")] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    processor: Processor = None,
) -> None:
    """Queries, documents per query, positive ratio, duplicates, token lengths, over-length pairs."""
    from rerankctl.data.stats import file_stats, load_any_tokenizer

    loaded = _load(processor)
    if tokenizer and tokenizer != "qwen3":
        from rerankctl.config.preflight import check_ref

        hint = ", or `--tokenizer qwen3` (the Qwen3 tokenizer, built offline)"
        tokenizer = check_ref(tokenizer, "--tokenizer", offline_hint=hint)
    tok = load_any_tokenizer(tokenizer) if tokenizer else None
    result = file_stats(file, kind, tokenizer=tok, max_length=max_length, processor=loaded)
    if as_json:
        _print_json(result)
        return
    for key, value in result.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k} {v:.4g}" for k, v in value.items())
            typer.echo(f"{key:>26}: {shown}")
        elif isinstance(value, float):
            typer.echo(f"{key:>26}: {value:.4f}")
        else:
            typer.echo(f"{key:>26}: {value}")


def convert(
    file: Annotated[Path, typer.Argument(help="The source file.")],
    source: Annotated[
        str | None, typer.Option("--from", help="Source format (`rerankctl data formats` lists them).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output JSONL.")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip and count bad rows.")] = False,
    max_errors: Annotated[int, typer.Option("--max-errors", help="How many skipped rows to list.")] = 20,
    processor: Processor = None,
) -> None:
    """Convert another tool's data (FlagEmbedding, ms-swift, hh-rlhf, ...) into rerankctl's format.

    With --processor and no --from, writes what the processor returns (checked, canonical shape).
    """
    from rerankctl.data.converters import convert_file
    from rerankctl.errors import UsageError

    if (source is None and processor is None) or output is None:
        raise UsageError(
            "convert needs --from (or --processor) and --output",
            hint="list the sources with `rerankctl data formats`",
        )
    loaded = _load(processor)
    report = convert_file(
        file, source, output, skip_invalid=skip_invalid, max_errors=max_errors, processor=loaded
    )
    typer.echo(
        f"{file} ({report.source}) -> {output} ({report.kind}): {report.rows} rows, {report.written} written, "
        f"{report.dropped} without a pair (ties), {report.invalid} invalid"
        + (f", {report.processor_dropped} dropped by the processor" if processor else "")
    )
    for error in report.errors:
        typer.echo(f"  {error.message}")


def formats() -> None:
    """List the source formats `convert --from` understands."""
    from rerankctl.data.converters import CONVERTERS

    for name, module in CONVERTERS.items():
        typer.echo(f"{name:<24}{module.KIND:<12}{module.DESCRIPTION}")


def split(
    file: Annotated[Path, typer.Argument(help="The data file.")],
    test_frac: Annotated[
        float, typer.Option("--test-frac", help="Fraction of distinct queries to hold out.")
    ] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Shuffling seed.")] = 0,
    train_output: Annotated[
        Path | None, typer.Option("--train-output", help="Default: FILE.train.jsonl")
    ] = None,
    test_output: Annotated[
        Path | None, typer.Option("--test-output", help="Default: FILE.test.jsonl")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help=KIND_HELP)] = None,
    processor: Processor = None,
) -> None:
    """Split into train and test by query, so no query appears on both sides."""
    from rerankctl.data.split import split_file

    stem = file.with_suffix("")
    train_output = train_output or Path(f"{stem}.train.jsonl")
    test_output = test_output or Path(f"{stem}.test.jsonl")
    report = split_file(
        file, train_output, test_output, test_frac=test_frac, seed=seed, kind=kind, processor=_load(processor)
    )
    typer.echo(
        f"{report.keys} distinct queries: {report.keys - report.test_keys} train ({report.train_rows} rows) -> "
        f"{train_output}, {report.test_keys} test ({report.test_rows} rows) -> {test_output}"
    )


def sample(
    file: Annotated[Path, typer.Argument(help="The data file.")],
    n: Annotated[int, typer.Option("-n", help="How many records.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: FILE.sample.jsonl")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help=KIND_HELP)] = None,
    processor: Processor = None,
) -> None:
    """Write N valid records chosen at random (in file order)."""
    from rerankctl.data.split import sample_file

    output = output or Path(f"{file.with_suffix('')}.sample.jsonl")
    written = sample_file(file, n, output, seed=seed, kind=kind, processor=_load(processor))
    typer.echo(f"wrote {written} records to {output}")


def synth(
    kind: Annotated[str, typer.Option("--kind", help="rerank, preference or vl.")] = "rerank",
    lang: Annotated[str, typer.Option("--lang", help="en or zh.")] = "en",
    n: Annotated[int, typer.Option("--n", "-n", help="How many records.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (same seed, same data).")] = 0,
    split_name: Annotated[
        str, typer.Option("--split", help="all, train or eval (disjoint query combinations).")
    ] = "all",
    output: Annotated[Path, typer.Option("--output", "-o", help="Output JSONL.")] = Path("synth.jsonl"),
    image_dir: Annotated[
        Path | None, typer.Option("--image-dir", help="VL: where the PNGs go (default: OUTPUT_images/).")
    ] = None,
    graded: Annotated[
        bool,
        typer.Option(
            "--graded", help="Rerank: docs/labels with grades 0-3 (attributes matched) instead of pos/neg."
        ),
    ] = False,
) -> None:
    """Write a built-in synthetic data set (learnable, deterministic, English or Chinese)."""
    from rerankctl.data import synth as synth_mod
    from rerankctl.data.io import write_jsonl
    from rerankctl.errors import UsageError

    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    if kind == "rerank":
        records = synth_mod.synth_rerank(n, seed, lang, split_name, graded=graded)
    elif kind == "preference":
        records = synth_mod.synth_preference(n, seed, lang, split_name)
    elif kind == "vl":
        folder = image_dir or output.parent / f"{output.with_suffix('').name}_images"
        records = synth_mod.synth_vl(n, seed, folder, lang, relative_to=output.resolve().parent)
    else:
        raise UsageError(f"unknown kind {kind!r}", hint="use one of: rerank, preference, vl")
    if graded and kind != "rerank":
        raise UsageError("--graded applies to --kind rerank only")
    write_jsonl(output, records)
    typer.echo(f"wrote {len(records)} {kind} records ({lang}) to {output}")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(
        no_args_is_help=True, help="Validate, inspect, convert, split and generate data files."
    )
    data_app.command()(validate)
    data_app.command()(stats)
    data_app.command()(convert)
    data_app.command()(formats)
    data_app.command()(split)
    data_app.command()(sample)
    data_app.command()(synth)
    app.add_typer(data_app, name="data")
