"""Build and run an RL training from an :class:`~rerankctl.config.rl.RLConfig`.

Same shape as :func:`rerankctl.train.sft_runner.run_sft` (whose helpers it imports): load the
SFT model with a fresh RL adapter (:func:`rerankctl.models.sft_loading.load_sft_model`), build the
groups, open the run in the store (main process only), evaluate the SFT model (step 0), train,
evaluate again, save, and close the run as ``completed``, ``failed`` or ``killed``.

Outputs under ``output``: ``checkpoint-N/`` (the RL adapter + optimizer state, for ``--resume``),
``rl_adapter/`` (the final RL adapter alone; its base is the merged SFT model) and ``final/``
(the SFT model with the RL adapter merged: an ordinary model directory that ``rerank``,
``serve``, ``eval`` and ``export`` load directly).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rerankctl.config.rl import RLConfig
from rerankctl.config.sft import BUILTIN_SYNTH_DATA, BUILTIN_TINY_MODEL
from rerankctl.errors import UsageError
from rerankctl.train.run_state import begin_training, evaluate_then_train, finish_completed
from rerankctl.train.sft_runner import (
    SFTResult,
    WithInstruction,
    default_output_dir,
    is_main_process,
    log_read_cuts,
    quiet_libraries,
    read_events,
    resolve_resume,
    train_read_options,
    training_arguments,
)

RLResult = SFTResult  # run id, output/final dirs, baseline (= the SFT model) and final metrics


def build_rl_datasets(cfg: RLConfig, tokenizer: Any) -> tuple[Any, list[dict], int]:
    """(training groups, held-out groups with all their documents, documents dropped as over-long)."""
    from rerankctl.train.rl_data import RLRerankDataset, StreamingRLRerankDataset

    group_kwargs = dict(
        n_docs=cfg.n_docs,
        n_pos=cfg.n_pos,
        max_docs=cfg.max_docs,
        seed=cfg.seed,
        strategy=cfg.sampling,
        max_chars=cfg.max_chars,
    )
    train_source: Any = cfg.data
    eval_source: Any = cfg.eval_data
    if not cfg.data:
        raise UsageError(
            "no training data", hint="pass --data FILE (or --preset tiny_rl for the built-in set)"
        )
    if cfg.data == BUILTIN_SYNTH_DATA:
        from rerankctl.data.synth import builtin_rerank_split

        train_source, builtin_eval = builtin_rerank_split(
            seed=cfg.seed, n_train=cfg.synth_train_queries, n_eval=cfg.synth_eval_queries
        )
        eval_source = eval_source or builtin_eval
    dropped = 0
    if cfg.streaming:
        if cfg.data == BUILTIN_SYNTH_DATA:
            raise UsageError("--streaming reads a JSONL file", hint="drop --streaming for the built-in data")
        if cfg.max_steps <= 0:
            raise UsageError(
                "--streaming needs --max-steps", hint="a stream has no length to count epochs by"
            )
        # Streamed: the processor's and --min-pos/--min-neg drops are counted per reader, not logged.
        train: Any = StreamingRLRerankDataset(
            train_source, instruction=cfg.instruction, **group_kwargs, **train_read_options(cfg)
        )
        if cfg.num_iterations > 1 and cfg.loss_type != "dpo":
            from rerankctl.train.rl_data import RepeatChunks

            chunk = cfg.batch_size * cfg.gradient_accumulation_steps * cfg.steps_per_rollout
            train = RepeatChunks(train, chunk, cfg.num_iterations)
    else:
        base = RLRerankDataset(train_source, **group_kwargs, **train_read_options(cfg))
        dropped = base.filter_overlength(tokenizer, cfg.max_length) if cfg.filter_overlength else 0
        train = WithInstruction(base, cfg.instruction)
        train.read_cuts = {str(cfg.data): base.cut}  # records cut to --max-chars, for the run's events
        train.read_events = read_events(cfg, base)
    eval_groups: list[dict] = []
    if eval_source is not None:
        eval_ds = WithInstruction(
            RLRerankDataset(
                eval_source,
                n_docs=0,
                n_pos=0,
                max_docs=0,
                seed=cfg.seed,
                max_chars=cfg.max_chars,
                processor=cfg.processor if cfg.eval_data else None,
            ),
            cfg.instruction,
        )
        if hasattr(train, "read_cuts"):
            train.read_cuts[str(cfg.eval_data or "built-in eval")] = eval_ds.dataset.cut
            train.read_events += read_events(cfg, eval_ds.dataset, source=cfg.eval_data)
        count = len(eval_ds) if not cfg.eval_max_queries else min(len(eval_ds), cfg.eval_max_queries)
        eval_groups = [g for g in (eval_ds[i] for i in range(count)) if any(x > 0 for x in g["labels"])]
    return train, eval_groups, dropped


def trainer_options(cfg: RLConfig) -> dict[str, Any]:
    """The RL keyword arguments of :class:`RLTrainer` from the config."""
    return {
        "loss_type": cfg.loss_type,
        "policy": cfg.policy,
        "reward_type": cfg.reward_type,
        "reward_k": cfg.reward_k,
        "scale_rewards": cfg.scale_rewards,
        "num_iterations": cfg.num_iterations,
        "steps_per_rollout": cfg.steps_per_rollout,
        "dynamic_sampling_max_draws": cfg.dynamic_sampling_max_draws,
        "dpo_reference_free": cfg.dpo_reference_free,
        "kl_coef": cfg.kl_coef,
        "kl_kind": cfg.kl_kind,
        "log_reference_kl": cfg.log_reference_kl,
        "num_samples": cfg.num_samples,
        "credit": cfg.credit,
        "temperature": cfg.temperature,
        "clip_eps": cfg.clip_eps,
        "clip_eps_high": cfg.clip_eps_high,
        "dapo_dynamic_sampling": cfg.dapo_dynamic_sampling,
        "dpo_beta": cfg.dpo_beta,
        "dpo_loss_type": cfg.dpo_loss_type,
        "dpo_max_pairs": cfg.dpo_max_pairs,
        "chunk_size": 0 if cfg.chunk_size == "auto" else int(cfg.chunk_size),  # auto: run_rl resolves it
        "eval_batch_size": cfg.eval_batch_size,
        "shared_prefix": cfg.shared_prefix,
    }


def save_merged(model: Any, tokenizer: Any, target: Path) -> None:
    """Merge the RL adapter into the weights and write a plain model directory atomically."""
    from rerankctl.train.checkpointing import save_final_atomically

    merged = model.merge_and_unload()
    merged.config.use_cache = True

    def write(folder: str) -> None:
        merged.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    save_final_atomically(target, write)


def run_rl(cfg: RLConfig, console: Any = None, store_path: str | None = None) -> RLResult:
    """Train the RL stage as ``cfg`` says and return where the result is and how it scored."""
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback

    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.models.loading import load_tokenizer
    from rerankctl.models.sft_loading import load_sft_model
    from rerankctl.train.callbacks import RunStoreCallback, SetEpochCallback
    from rerankctl.train.progress import progress_callbacks
    from rerankctl.train.rl import RLTrainer
    from rerankctl.train.rl_data import RLCollator
    from rerankctl.train.trackers import attach_trackers

    if not cfg.sft_model and not cfg.base_model:
        raise UsageError(
            "no model to start from",
            hint="pass --sft-model DIR (the final/ folder of `rerankctl train sft`) or --base-model DIR",
        )
    start = cfg.sft_model or cfg.base_model
    if start == BUILTIN_TINY_MODEL:  # RL from the built-in tiny base model, as `train sft` builds it
        from rerankctl.models.tiny import tiny_qwen3_dir

        start = str(tiny_qwen3_dir(seed=cfg.seed))
    quiet_libraries()
    from rerankctl.models.flash import check_attn_implementation

    check_attn_implementation(cfg.attn_implementation)
    set_seed(cfg.seed)
    tokenizer = load_tokenizer(start)
    prompt = PromptTokenizer(tokenizer, max_length=cfg.max_length)
    train_ds, eval_groups, dropped = build_rl_datasets(cfg, tokenizer)

    run_name = cfg.run_name or f"rl-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(cfg.output) if cfg.output else default_output_dir(run_name)
    session = begin_training(
        "rl",
        config=cfg.to_dict(),
        name=run_name,
        output_dir=output_dir,
        tags=cfg.tags,
        store_path=store_path,
        resolve_resume=lambda: resolve_resume(cfg, output_dir),
    )
    writer, resume = session.writer, session.resume
    if writer is not None:
        size = len(train_ds) if hasattr(train_ds, "__len__") else "streamed"
        writer.log_event(
            f"{'sft' if cfg.sft_model else 'base'} model {start}; {cfg.loss_type} ({cfg.policy}) with "
            f"{cfg.reward_type} rewards, {cfg.num_iterations} pass(es) per rollout; "
            f"{size} training queries; {len(eval_groups)} eval queries"
            + (f"; {dropped} over-long documents dropped" if dropped else "")
        )
        log_read_cuts(writer, train_ds, cfg.max_chars)
    with session.status():
        model = load_sft_model(
            start,
            cfg.base_model if cfg.sft_model else None,
            lora=cfg.lora,
            attn_implementation=cfg.attn_implementation,
            gradient_checkpointing=cfg.gradient_checkpointing,
        )
        from rerankctl.train.auto_chunk import report_plan, resolve_chunk_size

        chunk_size, plan = resolve_chunk_size(cfg, model, prompt.yes_id, prompt.no_id)
        report_plan(plan, console if is_main_process() else None, writer)
        args = training_arguments(cfg, output_dir, has_eval=bool(eval_groups))
        callbacks = [
            RunStoreCallback(writer),
            *progress_callbacks(console, f"rl {run_name}"),
            SetEpochCallback(train_ds),
        ]
        trainer = RLTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_groups or None,
            data_collator=RLCollator(
                tokenizer, max_length=cfg.max_length, filter_overlength=cfg.filter_overlength
            ),
            processing_class=tokenizer,
            callbacks=callbacks,
            yes_id=prompt.yes_id,
            no_id=prompt.no_id,
            eval_groups=eval_groups,
            prompt_tokenizer=prompt,
            **dict(trainer_options(cfg), chunk_size=chunk_size),
        )
        trainer.remove_callback(PrinterCallback)
        attach_trackers(trainer, writer)
        baseline, train_seconds = evaluate_then_train(trainer, prompt, eval_groups, cfg, writer, resume)
        final: dict[str, float] = {}
        if eval_groups:
            final = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items() if k != "eval_runtime"}
        trainer.save_final(output_dir / "rl_adapter")
        final_dir = output_dir / "final"
        if trainer.is_world_process_zero():
            save_merged(trainer.accelerator.unwrap_model(trainer.model), tokenizer, final_dir)
        if writer is not None:
            writer.log_event(
                f"RL adapter saved to {output_dir / 'rl_adapter'}", step=trainer.state.global_step
            )
        finish_completed(writer, final_dir, trainer.state.global_step, train_seconds, baseline, final)
        return RLResult(
            run_id=writer.id if writer else None,
            output_dir=output_dir,
            final_dir=final_dir,
            baseline=baseline,
            final=final,
            train_seconds=train_seconds,
            global_step=trainer.state.global_step,
        )
