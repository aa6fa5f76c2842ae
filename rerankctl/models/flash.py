"""Whether flash-attention 2 can run here, and a clear refusal when it was asked for and cannot.

Asking for flash attention (``--flash-attention``, ``--attn-implementation flash_attention_2``)
on a machine without it used to fall back silently (VL) or fail deep inside transformers
(a traceback after the run had started). A user who names an attention kernel expects that
kernel: a silent fallback changes memory use and speed (and, at bf16, scores) behind their
back. So an explicit request is refused before anything loads; only the *unset* default of
`train vl-reward` picks flash-attention when it is usable and the transformers default
otherwise, and says which.
"""

from __future__ import annotations

import importlib.util

FLASH = "flash_attention_2"


def flash_attention_problem() -> str | None:
    """Why flash-attention 2 cannot run here (None when it can): no CUDA GPU, no flash-attn, old GPU."""
    import torch

    if not torch.cuda.is_available():
        return "it needs a CUDA GPU and none is visible"
    if importlib.util.find_spec("flash_attn") is None:
        return "the flash-attn package is not installed"
    major, _minor = torch.cuda.get_device_capability()
    if major < 8:
        return f"it needs an Ampere or newer GPU (compute capability 8.0+), this one is {major}.x"
    try:
        import flash_attn  # noqa: F401 - a build for another torch/CUDA fails at import
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError (missing .so), RuntimeError
        return f"flash-attn does not import: {type(exc).__name__}: {exc}"
    return None


def require_flash_attention(flag: str, alternative: str) -> None:
    """Raise a DependencyError naming ``flag`` when flash-attention 2 cannot run here."""
    problem = flash_attention_problem()
    if problem is not None:
        from rerankctl.errors import DependencyError

        raise DependencyError(
            f"{flag}: {problem}", hint=f"{alternative} (or pip install flash-attn on a GPU machine)"
        )


def check_attn_implementation(value: str | None) -> None:
    """Refuse ``--attn-implementation flash_attention_2`` where flash-attention cannot run."""
    if value == FLASH:
        require_flash_attention(f"--attn-implementation {FLASH}", "use --attn-implementation sdpa")
