"""VL preference pairs for the vision-language reward model.

Records ``{"id", "query", "image", "response": [a, b], "human_ranking": [0, 1]}`` are
read with their line numbers; images are opened lazily, in the collator, so a data set
larger than memory trains fine. A missing or unreadable image stops with a
:class:`~rerankctl.errors.DataError` naming the data file, the line and the ``image`` field.

The prompt is Qwen2-VL's chat format with one image::

    <|im_start|>user\\n<|vision_start|><|image_pad|>...<|vision_end|>{query}<|im_end|>\\n
    <|im_start|>assistant\\n{response}<|im_end|>

``<|image_pad|>`` is repeated ``t * h * w / merge_size**2`` times for the image's patch
grid - what ``Qwen2VLProcessor`` does; done here directly so that only the PIL image
processor is needed (no torchvision).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rerankctl.data.formats import VLRecord
from rerankctl.errors import DataError

IMAGE_PAD = "<|image_pad|>"
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"


@dataclass
class VLItem:
    """A record with where it came from (for error messages) and its image resolved to a path."""

    record: VLRecord
    image_path: Path
    source: str
    line: int

    @property
    def chosen(self) -> str:
        return self.record.responses[self.record.chosen_index]

    @property
    def rejected(self) -> str:
        return self.record.responses[1 - self.record.chosen_index]


def load_vl_items(
    path: str | os.PathLike,
    skip_invalid: bool = False,
    max_chars: int = 0,
    processor: Any = None,
    max_records: int | None = None,
) -> tuple[list[VLItem], int]:
    """Validated VL records of a file (image paths relative to the file) and the skipped count.

    ``max_chars`` cuts the query and responses as they are read (data/limits.py); ``processor``
    (``FILE:CLASS``, data/processor.py) rewrites every row first; ``max_records`` reads only the
    file's first that many rows."""
    from rerankctl.data.formats import RecordError
    from rerankctl.data.validate import parse_rows

    path = str(path)
    base = Path(path).resolve().parent
    items: list[VLItem] = []
    skipped = 0
    for row, record, error in parse_rows(
        path, "vl", check_images=True, max_chars=max_chars, processor=processor, max_records=max_records
    ):
        if error is None and sorted(record.human_ranking) != [0, 1]:
            error = DataError(
                "must be [0, 1] or [1, 0] for a pair",
                hint="0 marks the better response",
                path=path,
                line=row.line,
                field="human_ranking",
            )
        if error is not None:
            if not skip_invalid:
                raise error
            skipped += 1
            continue
        if len(record.responses) != 2:  # pragma: no cover - parse_vl already checks
            raise RecordError("response", "expected two responses")
        image = Path(record.image)
        items.append(VLItem(record, image if image.is_absolute() else base / image, path, row.line))
    if not items:
        raise DataError(
            "no valid VL records", hint="check the file with `rerankctl data validate`", path=path
        )
    return items, skipped


def open_image(item: VLItem):
    """The item's image as RGB; a DataError naming file, line and field when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(item.image_path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise DataError(
            f"no such image file: {item.image_path}",
            hint="paths are relative to the data file",
            path=item.source,
            line=item.line,
            field="image",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(
            f"cannot read image {item.image_path}: {exc}",
            hint="re-export the image as PNG or JPEG",
            path=item.source,
            line=item.line,
            field="image",
        ) from None


class VLEncoder:
    """Builds model inputs from (image, query, response) triples: the image processor + tokenizer."""

    def __init__(self, tokenizer: Any, min_pixels: int, max_pixels: int, max_length: int = 1024) -> None:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        self.tokenizer = tokenizer
        self.image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
        self.merge = self.image_processor.merge_size**2
        self.max_length = max_length

    def text(self, query: str, response: str, n_image_tokens: int) -> str:
        image = "<|vision_start|>" + IMAGE_PAD * n_image_tokens + "<|vision_end|>"
        return (
            f"{SYSTEM}<|im_start|>user\n{image}{query}<|im_end|>\n<|im_start|>assistant\n{response}<|im_end|>"
        )

    def encode(self, images: list, queries: list[str], responses: list[str]) -> dict[str, torch.Tensor]:
        """One batch; row i pairs ``images[i]`` with ``queries[i]`` and ``responses[i]``."""
        pixels = self.image_processor(images=images, return_tensors="pt")
        counts = [int(g.prod()) // self.merge for g in pixels["image_grid_thw"]]
        texts = [self.text(q, r, n) for q, r, n in zip(queries, responses, counts, strict=True)]
        enc = self.tokenizer(texts, add_special_tokens=False)
        seqs = []
        for ids, n in zip(enc["input_ids"], counts, strict=True):
            # Cut the end of the text but keep the closing <|im_end|> the score is read from.
            if len(ids) > self.max_length:
                if self.max_length < n + 24:
                    from rerankctl.errors import UsageError

                    raise UsageError(
                        f"--max-length {self.max_length} cannot hold an image of {n} tokens",
                        hint="raise --max-length or lower --max-pixels",
                    )
                ids = ids[: self.max_length - 1] + ids[-1:]
            seqs.append(ids)
        from rerankctl.data.preference_dataset import pad_right

        input_ids, mask = pad_right(seqs, self.tokenizer.pad_token_id or 0)
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "pixel_values": pixels["pixel_values"],
            "image_grid_thw": pixels["image_grid_thw"],
        }


class VLPairDataset(torch.utils.data.Dataset):
    """Indexes :class:`VLItem` (images stay on disk until the collator opens them)."""

    def __init__(self, items: list[VLItem]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"index": index, "item": self.items[index]}


class VLPairCollator:
    """Chosen rows first, then rejected rows, in one batch (the trainer splits the scores back)."""

    def __init__(self, encoder: VLEncoder) -> None:
        self.encoder = encoder

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        items = [f["item"] for f in features]
        images = [open_image(item) for item in items]
        queries = [item.record.query for item in items]
        batch = self.encoder.encode(
            images + images, queries + queries, [i.chosen for i in items] + [i.rejected for i in items]
        )
        batch["n_pairs"] = torch.tensor(len(items))
        batch["index"] = torch.tensor([f["index"] for f in features])
        return batch
