"""Synthetic VL preference data: coloured shapes drawn with Pillow.

Each image is one shape (circle, square, triangle, diamond) in one colour at a random
position and size on a light background. The query asks for the colour or the shape;
one response is right and one is wrong (wrong colour or wrong shape), in random order,
and ``human_ranking`` ranks the right one first.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from rerankctl.data.synth_vocab import VL_ANSWERS, VL_COLOURS, VL_QUESTIONS, VL_RGB, VL_SHAPES
from rerankctl.errors import UsageError

IMAGE_SIZE = 64


def draw_shape(shape: int, colour: int, rng: random.Random, size: int = IMAGE_SIZE):
    """A PIL image of shape index ``shape`` in colour index ``colour``."""
    from PIL import Image, ImageDraw

    grey = 235 + rng.randrange(21)
    image = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    extent = rng.randrange(size // 3, size * 3 // 4)
    x0 = rng.randrange(0, size - extent)
    y0 = rng.randrange(0, size - extent)
    x1, y1 = x0 + extent, y0 + extent
    fill = VL_RGB[colour]
    if shape == 0:
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == 1:
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == 2:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    return image


def synth_vl(
    n: int,
    seed: int = 0,
    image_dir: str | os.PathLike = "images",
    lang: str = "en",
    relative_to: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """``n`` VL preference records; writes ``image_dir/synth-vl-<i>.png`` for each.

    Image paths in the records are relative to ``relative_to`` when given (the directory of
    the JSONL file that will hold them), else absolute.
    """
    if lang not in VL_COLOURS:
        raise UsageError(f"unknown language {lang!r}", hint="use one of: en, zh")
    rng = random.Random(f"rerankctl-synth/vl/{lang}/{seed}")
    folder = Path(image_dir)
    folder.mkdir(parents=True, exist_ok=True)
    colours, shapes = VL_COLOURS[lang], VL_SHAPES[lang]
    out = []
    for i in range(n):
        colour, shape = rng.randrange(len(colours)), rng.randrange(len(shapes))
        image_path = folder / f"synth-vl-{i:06d}.png"
        draw_shape(shape, colour, rng).save(image_path, format="PNG")
        asked = rng.choice(("colour", "shape"))
        right = VL_ANSWERS[lang].format(colour=colours[colour], shape=shapes[shape])
        if asked == "colour":
            wrong_colour = (colour + rng.randrange(1, len(colours))) % len(colours)
            wrong = VL_ANSWERS[lang].format(colour=colours[wrong_colour], shape=shapes[shape])
        else:
            wrong_shape = (shape + rng.randrange(1, len(shapes))) % len(shapes)
            wrong = VL_ANSWERS[lang].format(colour=colours[colour], shape=shapes[wrong_shape])
        right_first = rng.random() < 0.5
        if relative_to is not None:
            shown = os.path.relpath(image_path.resolve(), Path(relative_to).resolve())
        else:
            shown = str(image_path.resolve())
        out.append(
            {
                "id": f"synth-vl-{i:06d}",
                "query": VL_QUESTIONS[lang][asked],
                "image": shown,
                "response": [right, wrong] if right_first else [wrong, right],
                "human_ranking": [0, 1] if right_first else [1, 0],
            }
        )
    return out
