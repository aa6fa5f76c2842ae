"""bench/real/vl_images.py: captions parsed from loader docstrings, held-out views and pairings."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "real"))

import vl_images  # noqa: E402

FETCHERS = '''
def _load(name):
    """Private helper: never an image."""

def download_all():
    """Download all datasets."""

def {name}():
    """{caption}

    More text that is not part of the caption.
    """
    return _load("data/{name}.png")
'''


def fake_skimage(root: Path, names: list[str]) -> Path:
    from PIL import Image

    data = root / "skimage" / "data"
    data.mkdir(parents=True)
    parts = [FETCHERS.format(name=names[0], caption=f"The {names[0]}\n   picture.")]
    for i, name in enumerate(names[1:], 1):
        parts.append(f'def {name}():\n    """The {name} picture."""\n    return _load("data/{name}.png")\n')
    parts.append('def remote():\n    """Fetched from the network."""\n    return _fetch("data/absent.png")\n')
    (data / "_fetchers.py").write_text("\n".join(parts))
    rng = random.Random(0)
    for i, name in enumerate(names):  # noise, grey and colour: every crop of it is different
        mode = "RGB" if i % 2 else "L"
        pixels = bytes(rng.randrange(256) for _ in range(80 * 60 * len(mode)))
        Image.frombytes(mode, (80, 60), pixels).save(data / f"{name}.png")
    return root / "skimage"


def test_captions_are_the_docstrings_first_paragraph_and_absent_files_are_skipped(tmp_path):
    names = ["camera", "moon", "coffee", "horse", "cell", "rocket"]
    found = vl_images.sample_images(fake_skimage(tmp_path, names))
    assert [n for n, _, _ in found] == names  # _load, download_all and remote (no file) left out
    assert found[0][2] == "The camera picture."  # whitespace collapsed, second paragraph dropped
    assert found[1][1].name == "moon.png"


def test_held_out_pairs_use_other_crops_and_negatives_never_paired_in_training(tmp_path):
    names = ["camera", "moon", "coffee", "horse", "cell", "rocket", "page"]
    images = vl_images.sample_images(fake_skimage(tmp_path, names))
    counts = vl_images.build_task(images, tmp_path / "task", train_views=6, test_views=3, size=28, seed=0)
    assert counts == {"train_pairs": 42, "heldout_pairs": 21, "images": 7}

    def pairs(split):
        rows = [json.loads(line) for line in (tmp_path / "task" / f"{split}.jsonl").open()]
        out = []
        for r in rows:
            name = r["id"].split("-")[1]
            chosen = r["response"][r["human_ranking"].index(0)]
            rejected = r["response"][r["human_ranking"].index(1)]
            assert chosen == f"The {name} picture." != rejected  # the image's own caption wins
            digest = hashlib.sha1((tmp_path / "task" / r["image"]).read_bytes()).hexdigest()
            out.append((name, rejected, digest))
        return out

    train, held = pairs("train"), pairs("heldout")
    train_pairings = {(n, w) for n, w, _ in train}
    assert not {(n, w) for n, w, _ in held} & train_pairings
    assert not {d for _, _, d in held} & {d for _, _, d in train}  # no held-out view is a training view
    # Both orders occur: a model preferring the first (or second) answer cannot pass.
    rows = [json.loads(line) for line in (tmp_path / "task" / "train.jsonl").open()]
    assert 0 < sum(r["human_ranking"] == [0, 1] for r in rows) < len(rows)


def test_too_few_images_is_refused(tmp_path):
    images = vl_images.sample_images(fake_skimage(tmp_path, ["camera", "moon"]))
    with pytest.raises(SystemExit, match="at least 5"):
        vl_images.build_task(images, tmp_path / "task")
