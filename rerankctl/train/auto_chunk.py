"""``--chunk-size auto``: the largest exact chunk (GradCache, train/chunked.py) that fits the memory.

The default ``train sft --model SmolLM2-135M --lora --n-docs 8 --max-length 256`` (batch 4)
was killed by the OOM killer at 22.5 GB: 4 × 8 × 256 tokens through 30 layers keep ~19 GB
of activations for one backward. Chunking bounds that at ``chunk`` rows and gives the same
gradients, so the only question is the chunk, and it is chosen here:

``chunk = floor((free − reserve − optimizer state) / (1.25 × bytes per row))``

* **free**: GPU — ``torch.cuda.mem_get_info`` minus the weights still to be moved there;
  host — ``MemAvailable`` of /proc/meminfo (psutil when installed), and a cgroup v2 limit
  when the container has one; shared by the processes of one machine (``LOCAL_WORLD_SIZE``).
* **bytes per row — measured**: one forward of one ``max_length`` row through the real
  model, in train mode, under the run's autocast, with autograd's
  ``saved_tensors_hooks`` adding up every tensor kept for backward (each storage once,
  parameters excluded). That is exactly the memory a row's activations hold until its
  backward, on any device, without allocator noise (RSS deltas on CPU are dominated by
  glibc's arenas) and without a backward pass. It follows the model's real layout
  (attention kernel, MLP width, dropout masks), which an analytic formula only approximates.
  The analytic estimate (Korthikanti et al. 2022, "Reducing Activation Recomputation in
  Large Transformer Models": ~34·h + 5·a·s bytes per token per layer at 16 bit) is used
  only *before* the probe, so a model whose single row cannot fit is refused without
  running it out of memory.
* **1.25**: backward briefly holds activation gradients next to the saved tensors.
* **optimizer state**: AdamW on the trainable parameters: gradient + two moments, fp32.
* **reserve**: max(512 MiB, 10 % of free) for the data loader, tokenizer and allocator slack.
* **host fraction 0.5**: on the host only half of the available memory is planned for: it is
  shared with other processes and the page cache, and a machine pushed into swap is far slower
  than a smaller chunk, while a smaller chunk costs almost nothing (chunking's price is one extra
  no-grad forward, whatever the chunk). A GPU is the run's own: all of its free memory is planned.

When every row of a step fits, the chunk is 0 (one pass, no extra no-grad forward). When
not even one row fits, training is refused before it starts, with what to change.
The probe runs the trainers' own scoring function (:func:`rerankctl.train.sft.score_rows`) on
one packed group of random ``max_length`` rows (random tokens share no head: the most a packed
document can cost), or on unshared rows with ``--no-shared-prefix``: the planned single-row
forward and the packed one differ (block-sparse attention over the packed sequence).
**Gradient checkpointing**: with it on, the probe measures a checkpointed forward (each layer's
input kept) plus one layer's activations (backward recomputes one layer at a time). When not
even one row fits without it, auto turns it on (printed in the plan, the run event and the
``gradient_checkpointing`` metric); when not even one row fits with it, training is refused.
**Host allocator**: on the host glibc is told to return freed activations to the OS
(:func:`bound_host_allocator`); without that, RSS grows well past the live tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerankctl.errors import UsageError

SAFETY = 1.25
MIN_RESERVE = 512 * 2**20
HOST_FRACTION = 0.5

GiB = 2**30


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


@dataclass
class ChunkPlan:
    """What ``--chunk-size auto`` chose and from what (all sizes in bytes)."""

    chunk_size: int  # rows per autograd pass; 0 = all rows of a step at once
    rows_per_step: int
    bytes_per_row: int
    free: int
    fixed: int  # optimizer state (+ weights still to move to the GPU)
    reserve: int
    device: str
    source: str
    fraction: float = 1.0  # of ``free`` planned for (HOST_FRACTION on the host)
    gradient_checkpointing: bool = False  # the bytes per row are those of a checkpointed model
    turned_on: bool = False  # checkpointing was off and auto turned it on (chunk 1 did not fit)
    allocator: str = ""  # what was done to the host allocator (bound_host_allocator)

    @property
    def rows_fit(self) -> int:
        room = self.free * self.fraction - self.fixed - self.reserve
        return max(0, int(room // (SAFETY * self.bytes_per_row)))

    def describe(self) -> str:
        chosen = "0 (all rows of a step at once)" if self.chunk_size == 0 else str(self.chunk_size)
        return (
            f"chunk_size auto = {chosen}: {self.rows_per_step} rows per step, {_gib(self.bytes_per_row)} of "
            f"activations per row (measured), {_gib(self.free)} free on {self.device} ({self.source}; "
            f"{self.fraction:.0%} planned for), "
            f"{_gib(self.fixed)} optimizer state, {_gib(self.reserve)} reserve"
            + (
                "; gradient checkpointing turned on (not even 1 row fits without it)"
                if self.turned_on
                else ("; with gradient checkpointing" if self.gradient_checkpointing else "")
            )
            + (f"; {self.allocator}" if self.allocator else "")
        )

    def metrics(self) -> dict[str, float]:
        return {
            "chunk_size": float(self.chunk_size),
            "activation_bytes_per_row": float(self.bytes_per_row),
            "free_memory_bytes": float(self.free),
            "gradient_checkpointing": float(self.gradient_checkpointing),
        }


# ---------------------------------------------------------------------------------------------- memory


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), None when unlimited or unknown."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def host_free_memory() -> tuple[int, str]:
    """(bytes the host can still give, where that number came from)."""
    try:
        import psutil

        free, source = int(psutil.virtual_memory().available), "psutil available"
    except ImportError:
        free, source = _meminfo_available() or 0, "/proc/meminfo MemAvailable"
    cgroup = _cgroup_available()
    if cgroup is not None and cgroup < free:
        free, source = cgroup, "cgroup memory.max"
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    if share > 1:
        free //= share
        source += f" / {share} local processes"
    return free, source


def free_memory(device: Any) -> tuple[int, str]:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free), "torch.cuda.mem_get_info"
    return host_free_memory()


def training_device() -> Any:
    """Where the Trainer will put the model: this rank's GPU when CUDA is usable, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0") or 0))
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------- the model


def optimizer_state_bytes(model: Any) -> int:
    """AdamW on the trainable parameters: fp32 gradient + exp_avg + exp_avg_sq."""
    return sum(p.numel() * 4 * 3 for p in model.parameters() if p.requires_grad)


def _config_of(model: Any) -> Any:
    config = getattr(model, "config", None)
    return getattr(config, "text_config", None) or config


def analytic_row_bytes(model: Any, tokens: int, bytes_per_value: int) -> int:
    """Korthikanti et al. (2022) activation memory of one row: s·L·(34·h + 5·a·s) at 16 bit, scaled."""
    config = _config_of(model)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_attention_heads", 1) or 1)
    if not hidden or not layers:
        return 0
    per_layer = tokens * (34 * hidden + 5 * heads * tokens)  # bytes at 2 bytes per value
    return int(per_layer * layers * bytes_per_value / 2)


def _autocast(device: Any, bf16: bool, fp16: bool):
    import contextlib

    import torch

    if not (bf16 or fp16):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if bf16 else torch.float16
    try:
        return torch.autocast(device_type=device.type, dtype=dtype)
    except (RuntimeError, ValueError):  # a dtype the device's autocast lacks: measure in fp32 (more)
        return contextlib.nullcontext()


def _saved_bytes(model: Any, run: Any) -> int:
    """Bytes autograd keeps for backward while ``run()`` runs (each storage once, parameters excluded)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params:
            seen[ptr] = max(seen.get(ptr, 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    del out
    return sum(seen.values())


def _checkpointing(model: Any, on: bool | None = None) -> bool:
    """Whether ``model`` is checkpointed; with ``on``, switch it (transformers 5.2 names, else the old)."""
    new = hasattr(model, "activation_checkpointing_enable")
    if on is None:
        name = "is_activation_checkpointing" if new else "is_gradient_checkpointing"
        return bool(getattr(model, name, False))
    prefix = "activation" if new else "gradient"
    if on:
        getattr(model, f"{prefix}_checkpointing_enable")(
            **{f"{prefix}_checkpointing_kwargs": {"use_reentrant": False}}
        )
    else:
        getattr(model, f"{prefix}_checkpointing_disable")()
    return on


def measure_row_bytes(
    model: Any,
    yes_id: int,
    no_id: int,
    tokens: int,
    bf16: bool = False,
    fp16: bool = False,
    rows: int = 2,
    shared_prefix: bool = False,
    gradient_checkpointing: bool = False,
) -> int:
    """Activation bytes per document of the training forward (see module doc), per row of ``rows``.

    The rows are scored by :func:`rerankctl.train.sft.score_rows`, the function both trainers
    train through: with ``shared_prefix`` they are one packed group (their random tokens share no
    head, the most a packed document can cost). With ``gradient_checkpointing`` the model is
    checkpointed for the probe (and left as it was): what stays saved is every layer's input
    (non-reentrant checkpointing saves them under these hooks) plus the outside of the layers;
    backward then recomputes one layer at a time, whose activations are added as one layer's
    share of an unchecked probe.
    """
    import torch

    from rerankctl.models.shared_prefix import enable_shared_prefix
    from rerankctl.models.yes_no_head import install_yes_no_head
    from rerankctl.train.sft import score_rows

    install_yes_no_head(model, yes_id, no_id)  # the training forward: two logits, not the whole vocabulary
    shared = bool(shared_prefix and enable_shared_prefix(model))  # as the trainer will (idempotent)
    first = next(model.parameters())
    vocab = int(getattr(_config_of(model), "vocab_size", 0) or 1000)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (rows, tokens), generator=generator).to(first.device)
    mask = torch.ones_like(ids)
    groups = torch.zeros(rows, dtype=torch.long, device=first.device)

    def run() -> Any:
        with _autocast(first.device, bf16, fp16):
            return score_rows(model, ids, mask, groups, shared)

    was_training = model.training
    model.train()  # dropout keeps its masks for backward: count them
    rng = torch.get_rng_state()
    was_checkpointed = _checkpointing(model)
    try:
        if was_checkpointed:
            _checkpointing(model, False)
        plain = _saved_bytes(model, run)
        if not gradient_checkpointing:
            return -(-plain // rows)
        _checkpointing(model, True)
        kept = _saved_bytes(model, run)
        layers = max(1, int(getattr(_config_of(model), "num_hidden_layers", 1) or 1))
        return -(-(kept + plain // layers) // rows)
    finally:
        if was_checkpointed != _checkpointing(model):
            _checkpointing(model, was_checkpointed)
        torch.set_rng_state(rng)  # the probe's dropout must not shift the run's random stream
        model.train(was_training)


# ---------------------------------------------------------------------------------------------- the plan


def report_plan(plan: ChunkPlan | None, console: Any, writer: Any) -> None:
    """Print the chosen chunk and record it in the run store (an event and ``chunk_size`` metrics)."""
    if plan is None:
        return
    if console is not None:
        console.print(plan.describe())
    if writer is not None:
        writer.log_event(plan.describe())
        writer.log_metrics(0, plan.metrics())


def plan_chunk(
    rows_per_step: int,
    bytes_per_row: int,
    free: int,
    fixed: int,
    device: str = "cpu",
    source: str = "given",
    fraction: float = 1.0,
) -> ChunkPlan:
    """The chunk for these figures; raises UsageError when not even one row fits."""
    reserve = max(MIN_RESERVE, free // 10)
    plan = ChunkPlan(0, rows_per_step, max(1, bytes_per_row), free, fixed, reserve, device, source, fraction)
    fit = plan.rows_fit
    if fit < 1:
        raise not_even_one_row(plan)
    plan.chunk_size = 0 if fit >= rows_per_step else fit
    return plan


def not_even_one_row(plan: ChunkPlan) -> UsageError:
    need = SAFETY * plan.bytes_per_row + plan.fixed + plan.reserve
    return UsageError(
        f"--chunk-size auto: not even one document fits: one row needs {_gib(SAFETY * plan.bytes_per_row)} of "
        f"activations (+ {_gib(plan.fixed)} optimizer state, {_gib(plan.reserve)} reserve = {_gib(need)}), "
        f"{_gib(plan.free)} is free on {plan.device} ({plan.source}; {plan.fraction:.0%} planned for)"
        + (", even with gradient checkpointing" if plan.gradient_checkpointing else ""),
        hint="lower --max-length, train a LoRA (--lora), free memory, or use a bigger device",
    )


def rows_per_step(cfg: Any) -> int:
    """Documents in one step's batch: groups × documents per group (n_docs, or max_docs when 0)."""
    per_group = cfg.n_docs or cfg.max_docs
    return max(1, int(cfg.batch_size) * int(per_group))


def bound_host_allocator() -> str:
    """Make host RSS follow the live tensors, so that the plan (live bytes) bounds the peak RSS.

    glibc raises its mmap threshold (up to 32 MiB) each time a large block is freed, after which
    activation-sized blocks come from the heap and stay resident after they are freed: measured
    on the 30-layer benchmark shape, one chunk's RSS grew 1.39x its saved-tensor bytes, and a
    step of several chunks reached 12.9 GB where the chunk planned for ~6.5 GB. A fixed 1 MiB
    mmap threshold (which also stops the dynamic raise) returns every freed activation to the
    OS; with it the same probe's RSS grew 1.00x its saved bytes (4 layers, 16 rows: 0.852 GiB RSS
    for 0.851 GiB saved). Only on glibc; elsewhere nothing is changed and "" is returned.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return ""
    m_trim_threshold, m_mmap_threshold = -1, -3
    if mallopt(m_mmap_threshold, 2**20) != 1 or mallopt(m_trim_threshold, 2**20) != 1:
        return ""
    return "glibc mmap/trim threshold fixed at 1 MiB (freed activations go back to the OS)"


def resolve_chunk_size(cfg: Any, model: Any, yes_id: int, no_id: int) -> tuple[int, ChunkPlan | None]:
    """``cfg.chunk_size`` as a number of rows; for ``auto`` also the plan that chose it.

    When not even one row fits without gradient checkpointing, the probe is repeated with it and,
    when a row fits then, ``cfg.gradient_checkpointing`` is turned on (the Trainer then enables it;
    a frozen base's input embeddings are made to require grad, as the loaders do for the flag).
    """
    if str(cfg.chunk_size) != "auto":
        return int(cfg.chunk_size), None
    device = training_device()
    allocator = bound_host_allocator() if device.type == "cpu" else ""
    free, source = free_memory(device)
    fixed = optimizer_state_bytes(model)
    first = next(model.parameters())
    if device.type == "cuda" and first.device.type != "cuda":
        fixed += sum(p.numel() * p.element_size() for p in model.parameters())  # still to be moved there
    rows = rows_per_step(cfg)
    value_bytes = 2 if (cfg.bf16 or cfg.fp16) else 4
    fraction = 1.0 if device.type == "cuda" else HOST_FRACTION
    reserve = max(MIN_RESERVE, free // 10)
    shared = bool(getattr(cfg, "shared_prefix", False))
    per_group = max(1, min(rows, int(cfg.n_docs or cfg.max_docs or 1), 2))  # one packed group's worth
    gc = bool(cfg.gradient_checkpointing)

    def plan_with(row_bytes: int, checkpointed: bool) -> ChunkPlan:
        plan = ChunkPlan(0, rows, max(1, row_bytes), free, fixed, reserve, str(device), source, fraction)
        plan.gradient_checkpointing, plan.turned_on, plan.allocator = (
            checkpointed,
            checkpointed and not gc,
            allocator,
        )
        return plan

    rough = analytic_row_bytes(model, cfg.max_length, value_bytes)
    layers = max(1, int(getattr(_config_of(model), "num_hidden_layers", 1) or 1))
    hidden = int(getattr(_config_of(model), "hidden_size", 0) or 0)
    rough_gc = rough // layers + layers * cfg.max_length * hidden * value_bytes
    if rough and rough_gc > 2 * max(1, free * fraction - fixed):  # refuse before a probe that could OOM
        raise not_even_one_row(plan_with(rough_gc, True))
    if not gc:
        measured = measure_row_bytes(
            model, yes_id, no_id, cfg.max_length, cfg.bf16, cfg.fp16, per_group, shared
        )
        plan = plan_with(measured or rough, False)
        if plan.rows_fit >= 1:
            plan.chunk_size = 0 if plan.rows_fit >= rows else plan.rows_fit
            return plan.chunk_size, plan
    measured = measure_row_bytes(model, yes_id, no_id, cfg.max_length, cfg.bf16, cfg.fp16, 1, shared, True)
    plan = plan_with(measured or rough_gc, True)
    if plan.rows_fit < 1:
        raise not_even_one_row(plan)
    plan.chunk_size = 0 if plan.rows_fit >= rows else plan.rows_fit
    if not gc:
        cfg.gradient_checkpointing = True  # TrainingArguments are built from cfg after this
        if any(not p.requires_grad for p in model.parameters()) and hasattr(
            model, "enable_input_require_grads"
        ):
            model.enable_input_require_grads()  # checkpointing a frozen base (LoRA) needs it
    return plan.chunk_size, plan
