"""`rerankctl eval reward`: preference accuracy and reward statistics of a trained reward model.

Hooked into the `eval` group by ``register(eval_app)``.
"""

from __future__ import annotations

from typing import Annotated

import typer


def eval_reward(
    model: Annotated[
        str, typer.Option(help="Reward model directory (a `train reward` final_model/ or checkpoint).")
    ],
    data: Annotated[str, typer.Option(help="Preference pairs: JSONL/Parquet/CSV file or hub name.")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Where the reports go.")] = None,
    dataset_format: Annotated[
        str | None, typer.Option(help="Convert the file from hh-rlhf, rm-static, ...")
    ] = None,
    batch: Annotated[int, typer.Option("--batch-size", "--batch", help="Pairs per batch.")] = 16,
    max_length: Annotated[int, typer.Option(help="Prompt + response token limit.")] = 1024,
    frac: Annotated[float, typer.Option(help="Evaluate a random fraction of the pairs.")] = 1.0,
    max_samples: Annotated[int | None, typer.Option(help="At most this many pairs.")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip malformed records.")] = False,
    run_name: Annotated[str | None, typer.Option(help="Run name in the run store.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Win rate, Kendall's tau, reward statistics, margin and length correlation; JSON + Markdown + PNG."""
    from rerankctl.config.preflight import check_ref
    from rerankctl.config.reward import RewardConfig

    model = check_ref(model, "--model")  # before torch and before a run row is opened
    data = check_ref(data, "--data", "dataset")
    from rerankctl.train.reward import run_reward_eval

    cfg = RewardConfig(
        eval_only=True,
        model_path=model,
        eval_dataset=data,
        dataset_format=dataset_format,
        eval_batch=batch,
        max_length=max_length,
        frac=frac,
        max_samples=max_samples,
        skip_invalid=skip_invalid,
        run_name=run_name,
    )
    result = run_reward_eval(cfg, output=output)
    if json_output:
        import json

        typer.echo(
            json.dumps(
                {"run_id": result.run_id, "report": str(result.report), "metrics": result.final}, indent=2
            )
        )
        return
    from rerankctl.train.reward_report import print_reward_summary

    print_reward_summary(result)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("reward")(eval_reward)
