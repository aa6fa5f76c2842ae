"""Build and run an SFT training from an :class:`~rerankctl.config.sft.SFTConfig`.

The runner does the wiring that the CLI (and Python users) should not repeat:
resolve the built-in tiny model and data, load the model (LoRA or full), build the
datasets and collator, open the run in the store (main process only), evaluate the
untrained model, train, save ``final/``, evaluate again, and close the run with
``completed``, ``failed`` (with the error) or ``killed`` (Ctrl-C).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerankctl import paths
from rerankctl.config.sft import BUILTIN_SYNTH_DATA, BUILTIN_TINY_MODEL, SFTConfig
from rerankctl.errors import UsageError
from rerankctl.train.run_state import begin_training, evaluate_then_train, finish_completed


@dataclass
class SFTResult:
    """What a finished run produced."""

    run_id: str | None
    output_dir: Path
    final_dir: Path
    baseline: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    global_step: int = 0


def is_main_process() -> bool:
    from rerankctl.train.run_state import is_main_process as main

    return main()


def quiet_libraries() -> None:
    """Silence per-step library progress bars and chatter; rerankctl prints its own progress."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def resolve_model_path(cfg: SFTConfig) -> str:
    if cfg.model == BUILTIN_TINY_MODEL:
        from rerankctl.models.tiny import tiny_qwen3_dir

        return str(tiny_qwen3_dir(seed=cfg.seed))
    return cfg.model


def default_output_dir(run_name: str) -> Path:
    return paths.runs_dir() / run_name


def load_model_for_training(cfg: SFTConfig, model_path: str) -> Any:
    """The causal LM to train: fp32 master weights (mixed precision comes from the Trainer), LoRA if asked."""
    import torch

    from rerankctl.models.loading import load_causal_lm

    model = load_causal_lm(model_path, dtype=torch.float32, attn_implementation=cfg.attn_implementation)
    model.config.use_cache = False
    if cfg.lora.enabled:
        from peft import LoraConfig

        from rerankctl.models.peft_wrap import get_peft_model

        if hasattr(model, "peft_config"):
            raise UsageError(
                f"{model_path} is already a LoRA adapter",
                hint="merge it first: rerankctl export CHECKPOINT --merge-lora --output DIR",
            )
        lora = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules,
            modules_to_save=cfg.lora.modules_to_save or None,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
    return model


class WithInstruction:
    """A dataset view that gives groups without an instruction the configured one."""

    def __init__(self, dataset: Any, instruction: str | None) -> None:
        self.dataset = dataset
        self.instruction = instruction

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        group = self.dataset[index]
        if self.instruction and not group.get("instruction"):
            group = dict(group, instruction=self.instruction)
        return group

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)


def build_datasets(cfg: SFTConfig, tokenizer: Any) -> tuple[Any, list[dict], int]:
    """(training groups, held-out groups with all their documents, documents dropped as over-long)."""
    from rerankctl.data.rerank_dataset import RerankDataset

    group_kwargs = dict(
        n_docs=cfg.n_docs,
        n_pos=cfg.n_pos,
        max_docs=cfg.max_docs,
        seed=cfg.seed,
        strategy=cfg.sampling,
        max_chars=cfg.max_chars,
    )
    full_kwargs = dict(group_kwargs, n_docs=0, n_pos=0)
    train_source: Any = cfg.data
    eval_source: Any = cfg.eval_data
    if cfg.data == BUILTIN_SYNTH_DATA:
        from rerankctl.data.synth import builtin_rerank_split

        train_source, builtin_eval = builtin_rerank_split(
            seed=cfg.seed, n_train=cfg.synth_train_queries, n_eval=cfg.synth_eval_queries
        )
        eval_source = eval_source or builtin_eval
    elif not cfg.data:
        raise UsageError("no training data", hint="pass --data FILE (or --preset tiny for the built-in set)")
    train = RerankDataset(train_source, **group_kwargs, **train_read_options(cfg))
    dropped = train.filter_overlength(tokenizer, cfg.max_length) if cfg.filter_overlength else 0
    eval_groups: list[dict] = []
    if eval_source is not None:
        eval_processor = cfg.processor if cfg.eval_data else None  # the user's files, not built-in data
        eval_ds = WithInstruction(
            RerankDataset(eval_source, **full_kwargs, processor=eval_processor), cfg.instruction
        )
        count = len(eval_ds) if not cfg.eval_max_queries else min(len(eval_ds), cfg.eval_max_queries)
        # A group without a relevant document says nothing about ranking quality.
        eval_groups = [g for g in (eval_ds[i] for i in range(count)) if any(x > 0 for x in g["labels"])]
    out = WithInstruction(train, cfg.instruction)
    out.read_cuts = {str(cfg.data): train.cut}  # records cut to --max-chars, for the run's events
    out.read_events = read_events(cfg, train)
    if eval_source is not None:
        out.read_cuts[str(cfg.eval_data or "built-in eval")] = eval_ds.dataset.cut
        out.read_events += read_events(cfg, eval_ds.dataset, source=cfg.eval_data)
    return out, eval_groups, dropped


def train_read_options(cfg: Any) -> dict[str, Any]:
    """How the training file is read: --processor (user files only), --max-samples, --min-pos/--min-neg."""
    user_file = cfg.data != BUILTIN_SYNTH_DATA
    return {
        "processor": cfg.processor if user_file else None,
        "max_records": cfg.max_samples,
        "min_pos": cfg.min_pos,
        "min_neg": cfg.min_neg,
    }


def read_events(cfg: Any, dataset: Any, source: str | None = None) -> list[str]:
    """Run-store events for what reading ``dataset`` did: the processor's drops, the small groups dropped."""
    from rerankctl.data.processor import describe

    source = source or str(cfg.data)
    events = []
    processor = getattr(dataset, "processor", None)
    if processor is not None:
        events.append(describe(processor, dataset.processor_dropped, source))
    if getattr(dataset, "too_few_dropped", 0):
        events.append(
            f"{source}: dropped {dataset.too_few_dropped} group(s) with fewer than {cfg.min_pos} positive(s) "
            f"or {cfg.min_neg} negative(s) (--min-pos/--min-neg)"
        )
    return events


def log_read_cuts(writer: Any, train_ds: Any, max_chars: int) -> None:
    """One run event per data source that had records cut to ``max_chars`` (data/limits.py)."""
    from rerankctl.data.limits import cut_event

    for source, count in getattr(train_ds, "read_cuts", {}).items():
        if count:
            writer.log_event(cut_event(count, max_chars, source))
    for event in getattr(train_ds, "read_events", []):
        writer.log_event(event)


def training_arguments(cfg: SFTConfig, output_dir: Path, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    from rerankctl.train.hf_args import bookkeeping_args, checkpointing_args

    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if cfg.eval_steps else "epoch"
    save_strategy = "steps" if cfg.save_steps else "epoch"
    if has_eval and eval_strategy != save_strategy:
        save_strategy = eval_strategy  # best-checkpoint tracking needs evaluations at save time
    save_steps = cfg.save_steps or cfg.eval_steps or 500
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=cfg.optim,
        bf16=cfg.bf16,
        fp16=cfg.fp16,
        **checkpointing_args(cfg.gradient_checkpointing),
        logging_steps=cfg.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=cfg.eval_steps or None,
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=cfg.save_total_limit,
        metric_for_best_model="eval_ndcg@10" if has_eval else None,
        greater_is_better=True if has_eval else None,
        load_best_model_at_end=False,
        **bookkeeping_args(cfg.seed, cfg.report_to, cfg.distributed),
        dataloader_num_workers=cfg.dataloader_workers,
        save_only_model=False,
        ddp_find_unused_parameters=False,
    )


def resolve_resume(cfg: SFTConfig, output_dir: Path) -> tuple[str | None, str | None]:
    """``(checkpoint, note)``: the newest complete ``checkpoint-N`` for ``latest``; the note names
    the partial checkpoints skipped (see :func:`rerankctl.train.checkpointing.resolve_resume_arg`)."""
    from rerankctl.train.checkpointing import resolve_resume_arg

    return resolve_resume_arg(cfg.resume, output_dir, clean=is_main_process())


def run_sft(cfg: SFTConfig, console: Any = None, store_path: str | None = None) -> SFTResult:
    """Train a reranker as ``cfg`` says and return where the result is and how it scored."""
    from transformers import set_seed

    from rerankctl.data.collator import RerankCollator
    from rerankctl.data.prompt import PromptTokenizer
    from rerankctl.losses import build_loss
    from rerankctl.models.flash import check_attn_implementation
    from rerankctl.models.loading import load_tokenizer
    from rerankctl.train.auto_chunk import report_plan, resolve_chunk_size
    from rerankctl.train.callbacks import RunStoreCallback, SetEpochCallback
    from rerankctl.train.progress import progress_callbacks
    from rerankctl.train.sft import ContrastiveSFTTrainer
    from rerankctl.train.trackers import attach_trackers

    quiet_libraries()
    check_attn_implementation(cfg.attn_implementation)
    # The built-in model before set_seed: building it on first use seeds torch itself, which would
    # give a fresh home's first run other LoRA weights than every later run of the same seed.
    model_path = resolve_model_path(cfg)
    set_seed(cfg.seed)
    loss_fn = build_loss(cfg.loss_type, **cfg.loss_options())
    tokenizer = load_tokenizer(model_path)
    prompt = PromptTokenizer(tokenizer, max_length=cfg.max_length)
    train_ds, eval_groups, dropped = build_datasets(cfg, tokenizer)

    run_name = cfg.run_name or f"sft-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(cfg.output) if cfg.output else default_output_dir(run_name)
    session = begin_training(
        "sft",
        config=cfg.to_dict(),
        name=run_name,
        output_dir=output_dir,
        tags=cfg.tags,
        store_path=store_path,
        resolve_resume=lambda: resolve_resume(cfg, output_dir),
    )
    writer, resume = session.writer, session.resume
    if writer is not None:
        writer.log_event(
            f"model {model_path}; {len(train_ds)} training queries; {len(eval_groups)} eval queries"
        )
        log_read_cuts(writer, train_ds, cfg.max_chars)
    with session.status():
        model = load_model_for_training(cfg, model_path)
        chunk_size, plan = resolve_chunk_size(cfg, model, prompt.yes_id, prompt.no_id)
        report_plan(plan, console if is_main_process() else None, writer)
        args = training_arguments(cfg, output_dir, has_eval=bool(eval_groups))
        collator = RerankCollator(
            tokenizer, max_length=cfg.max_length, filter_overlength=cfg.filter_overlength
        )
        callbacks = [
            RunStoreCallback(writer),
            *progress_callbacks(console, f"sft {run_name}"),
            SetEpochCallback(train_ds),
        ]
        trainer = ContrastiveSFTTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_groups
            or None,  # the Trainer only checks it exists; evaluate() ranks eval_groups
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=callbacks,
            loss_fn=loss_fn,
            yes_id=prompt.yes_id,
            no_id=prompt.no_id,
            chunk_size=chunk_size,
            eval_groups=eval_groups,
            prompt_tokenizer=prompt,
            eval_batch_size=cfg.eval_batch_size,
            shared_prefix=cfg.shared_prefix,
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our progress bar shows the logs; no raw dicts on stdout
        attach_trackers(trainer, writer)
        baseline, train_seconds = evaluate_then_train(trainer, prompt, eval_groups, cfg, writer, resume)
        final_dir = trainer.save_final(output_dir / "final", extra=tokenizer.save_pretrained)
        final: dict[str, float] = {}
        if eval_groups:
            final = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items() if k != "eval_runtime"}
        finish_completed(writer, final_dir, trainer.state.global_step, train_seconds, baseline, final)
        return SFTResult(
            run_id=writer.id if writer else None,
            output_dir=output_dir,
            final_dir=final_dir,
            baseline=baseline,
            final=final,
            train_seconds=train_seconds,
            global_step=trainer.state.global_step,
        )
