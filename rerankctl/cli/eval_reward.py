"""`rerankctl eval reward`: preference accuracy and reward statistics of a trained reward model.

Its options are the fields of :class:`rerankctl.config.eval.EvalRewardConfig` (cli/_options.py
builds them). Hooked into the `eval` group by ``register(eval_app)``.
"""

from __future__ import annotations

import typer

DOC = "Win rate, Kendall's tau, reward statistics, margin and length correlation; JSON + Markdown + PNG."


def eval_reward(cfg) -> None:  # type: ignore[no-untyped-def]
    """Evaluate the reward model ``cfg.model`` on the pairs of ``cfg.data``."""
    from rerankctl.config.preflight import check_ref
    from rerankctl.config.reward import RewardConfig

    model = check_ref(cfg.model, "--model")  # before torch and before a run row is opened
    data = check_ref(cfg.data, "--data", "dataset")
    from rerankctl.train.reward import run_reward_eval

    same = {"dataset_format", "max_length", "frac", "max_samples", "skip_invalid", "run_name"}
    reward_cfg = RewardConfig(
        eval_only=True, model_path=model, eval_dataset=data, eval_batch=cfg.batch_size,
        **cfg.model_dump(include=same),
    )  # fmt: skip
    result = run_reward_eval(reward_cfg, output=cfg.output)
    if cfg.as_json:
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
    from rerankctl.cli._options import register_config_command
    from rerankctl.config.eval import EvalRewardConfig

    register_config_command(
        eval_app, "reward", EvalRewardConfig, command="eval reward", run=eval_reward, doc=DOC, ranges=True
    )
