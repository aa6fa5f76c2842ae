"""A VL reward model learning a real preference on real photographs (issue 20, item 5).

    python bench/real/vl_images.py [--steps 600] [--size 112] [--out DIR]

The images are the sample photographs bundled in the scikit-image 0.26.0 wheel (PyPI; fetched and
unpacked by fetch.py, never installed) and each one's caption is the first sentence of its loader's
docstring in ``skimage/data/_fetchers.py`` ("Chelsea the cat.", "Coffee cup.", "Surface of the moon.").
The preference: for a view of an image, its own caption is preferred to another image's caption.

No pretrained vision-language weights are reachable offline (Qwen2-VL is on the Hub only), so the model
is rerankctl's tiny random Qwen2-VL (``builtin:tiny-qwen2vl``) trained from scratch by
``rerankctl train vl-reward``, run as a user would. What this measures is whether the VL reward
trainer learns a real image-text preference from real pixels, on held-out data; it says nothing about
how a pretrained Qwen2-VL transfers.

Held out, so that memorising training pairs cannot pass:
  views     every pair shows a random crop (50-100 % of the short side, random flip) of its image;
            held-out crops come from another random stream than the training crops;
  pairings  each image's negatives are split in two halves: training pairs use one, held-out pairs only
            the other, so no (image, wrong caption) pairing of the held-out set was seen in training.
Each caption is the chosen answer for its own image's views and the rejected one for others', about
equally often, so a score that ignores the image stays at 0.5 accuracy: beating it needs the picture.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fetch as fetch_mod  # noqa: E402

QUESTION = "Which caption describes this image?"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Loaders whose file is not one photograph: a detector cascade, label/stack files, a stereo pair.
SKIP = {"lbp_frontal_face_cascade_filename", "stereo_motorcycle", "lfw_subset", "download_all"}


def sample_images(skimage_dir: Path) -> list[tuple[str, Path, str]]:
    """(loader name, image file, caption) for every bundled single-image loader of ``skimage.data``.

    The caption is the docstring's first paragraph, whitespace collapsed; the file is the first
    ``data/<name>.<png|jpg>`` literal in the loader's body that exists in the wheel (the others are
    fetched from the network by scikit-image and are absent here).
    """
    data_dir = skimage_dir / "data"
    tree = ast.parse((data_dir / "_fetchers.py").read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_") or node.name in SKIP:
            continue
        doc = ast.get_docstring(node) or ""
        caption = " ".join(doc.split("\n\n")[0].split())
        names = [
            c.value.removeprefix("data/")
            for c in ast.walk(node)
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.startswith("data/")
        ]
        files = [
            data_dir / n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and (data_dir / n).is_file()
        ]
        if caption and files:
            found.append((node.name, files[0], caption))
    return found


def load_rgb(path: Path):
    """The image as RGB (grey images replicated, transparency flattened onto white)."""
    from PIL import Image

    image = Image.open(path)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, image)
    return image.convert("RGB")


def random_view(image, rng: random.Random, size: int):
    """A square crop of 50-100 % of the short side at a random place, maybe mirrored, resized to ``size``."""
    from PIL import Image

    w, h = image.size
    side = int(min(w, h) * rng.uniform(0.5, 1.0))
    x0, y0 = rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1)
    view = image.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return view


def build_task(
    images: list[tuple[str, Path, str]],
    out_dir: Path,
    train_views: int = 40,
    test_views: int = 10,
    size: int = 112,
    seed: int = 0,
) -> dict[str, int]:
    """Write ``train.jsonl`` and ``heldout.jsonl`` (+ ``img/``) under ``out_dir``; return counts."""
    if len(images) < 5:
        raise SystemExit(f"only {len(images)} sample images found: need at least 5 for split negatives")
    rng = random.Random(f"vl-images/{seed}")
    names = [n for n, _, _ in images]
    captions = {n: c for n, _, c in images}
    if len(set(captions.values())) != len(captions):
        raise SystemExit("two sample images share a caption: the preference would be ambiguous")
    negatives: dict[str, tuple[list[str], list[str]]] = {}
    for name in names:
        others = [o for o in names if o != name]
        rng.shuffle(others)
        half = len(others) // 2
        negatives[name] = (others[:half], others[half:])
    img_dir = out_dir / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, views, which in (("train", train_views, 0), ("heldout", test_views, 1)):
        view_rng = random.Random(f"vl-images/{seed}/{split}")  # held-out crops: another stream
        rows = []
        for name, path, caption in images:
            image = load_rgb(path)
            for v in range(views):
                file = img_dir / f"{split}-{name}-{v:03d}.png"
                random_view(image, view_rng, size).save(file)
                wrong = captions[view_rng.choice(negatives[name][which])]
                first = view_rng.random() < 0.5
                rows.append(
                    {
                        "id": f"{split}-{name}-{v}",
                        "query": QUESTION,
                        "image": os.path.relpath(file, out_dir),
                        "response": [caption, wrong] if first else [wrong, caption],
                        "human_ranking": [0, 1] if first else [1, 0],
                    }
                )
        view_rng.shuffle(rows)
        target = out_dir / f"{split}.jsonl"
        tmp = target.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, target)
        counts[f"{split}_pairs"] = len(rows)
    counts["images"] = len(images)
    return counts


def write_shuffled_control(task: Path, seed: int = 0) -> Path:
    """``heldout_shuffled.jsonl``: the held-out pairs, each shown with a view of a *third* image.

    Same captions, same order, only the picture swapped for one that is neither the right nor the
    wrong caption's: a model that reads the image falls to about 0.5 here, one that scored the
    captions alone would keep its held-out accuracy.
    """
    rows = [json.loads(line) for line in (task / "heldout.jsonl").open(encoding="utf-8")]
    owner = {
        r["response"][r["human_ranking"].index(0)]: r["id"].split("-", 1)[1].rsplit("-", 1)[0] for r in rows
    }
    rng = random.Random(f"vl-images/{seed}/control")
    out = []
    for r in rows:
        excluded = {owner.get(c) for c in r["response"]}
        donor = rng.choice([x for x in rows if x["id"].split("-", 1)[1].rsplit("-", 1)[0] not in excluded])
        out.append({**r, "image": donor["image"]})
    target = task / "heldout_shuffled.jsonl"
    target.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return target


def accuracy_curve(home: Path) -> list[tuple[int, float]]:
    """(step, held-out accuracy) of the run in ``home``'s run store; step 0 is the fresh head."""
    db = sqlite3.connect(home / "runs.db")
    try:
        rows = db.execute(
            "SELECT step, value FROM metrics WHERE key = 'eval_accuracy' ORDER BY step, id"
        ).fetchall()
    finally:
        db.close()
    return list(dict(rows).items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(fetch_mod.CACHE / "vl-images"), help="task files, run and results")
    ap.add_argument("--size", type=int, default=112, help="view side in pixels (112: 16 image tokens)")
    ap.add_argument("--train-views", type=int, default=40, help="training crops per image")
    ap.add_argument("--test-views", type=int, default=10, help="held-out crops per image")
    ap.add_argument("--steps", type=int, default=600, help="optimizer steps of 16 pairs")
    ap.add_argument("--lr", type=float, default=None, help="default: the tiny_vl_reward preset's")
    ap.add_argument("--seed", type=int, default=0, help="crops, negatives, model head and data order")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phases: dict[str, float] = {}
    t = time.perf_counter()
    skimage_dir = fetch_mod.fetch_skimage()
    images = sample_images(skimage_dir)
    phases["fetch"] = time.perf_counter() - t
    t = time.perf_counter()
    task = out / "task"
    counts = build_task(images, task, args.train_views, args.test_views, args.size, args.seed)
    phases["task"] = time.perf_counter() - t
    print(f"{counts['images']} images: " + "; ".join(f"{c} ({n})" for n, _, c in images), flush=True)

    home = out / "home"  # a run store of its own: the curve below is this run's
    if (home / "runs.db").exists():
        (home / "runs.db").unlink()
    shutil.rmtree(
        out / "runs", ignore_errors=True
    )  # this script's own runs: the final model must be this one
    home.mkdir(exist_ok=True)
    env = dict(os.environ, RERANKCTL_HOME=str(home))
    pixels = args.size * args.size
    eval_every = max(1, args.steps // 6)
    cmd = [
        sys.executable, "-m", "rerankctl", "train", "vl-reward", "--preset", "tiny_vl_reward",
        "--data", str(task / "train.jsonl"), "--eval-data", str(task / "heldout.jsonl"),
        "--min-pixels", str(pixels), "--max-pixels", str(pixels), "--max-steps", str(args.steps),
        *(["--lr", str(args.lr)] if args.lr else []), "--eval-steps", str(eval_every), "--early-stopping-patience", "1000", "--seed", str(args.seed),
        "-o", str(out / "runs"), "--run-name", "vl-images",
    ]  # fmt: skip
    print("$ rerankctl " + " ".join(cmd[3:]), flush=True)
    t = time.perf_counter()
    with (out / "train.log").open("w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    phases["train vl-reward"] = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"train vl-reward failed (exit {proc.returncode}); see {out / 'train.log'}")
    curve = accuracy_curve(home)
    before, after = curve[0][1], curve[-1][1]
    control = write_shuffled_control(task, args.seed)
    scores = out / "control_scores.jsonl"
    final_model = next((out / "runs").glob("*/final_model"))
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rerankctl", "train", "vl-reward", "--test-only", "--model-path", str(final_model),
         "--test-data", str(control), "--test-output", str(scores), "--max-length", "96", "-o", str(out / "runs")],
        env=env, stdout=(out / "control.log").open("w"), stderr=subprocess.STDOUT, check=True,
    )  # fmt: skip
    phases["control (--test-only)"] = time.perf_counter() - t
    rows = [json.loads(line) for line in scores.open()]
    shuffled = sum(r["correct"] for r in rows) / len(rows)
    pairs_per_s = args.steps * 16 / phases["train vl-reward"]
    print(f"\nheld-out accuracy ({counts['heldout_pairs']} pairs): {before:.4f} before -> {after:.4f} after")
    print("curve (step: accuracy): " + ", ".join(f"{s}: {a:.3f}" for s, a in curve))
    print(f"control, the same held-out pairs shown with a third image's view: {shuffled:.4f}")
    print("\n| phase | wall s |\n|---|---|")
    for name, secs in phases.items():
        print(f"| {name} | {secs:.0f} |")
    print(f"\ntraining: {pairs_per_s:.1f} pairs/s ({args.steps} steps x 16 pairs)")
    (out / "results.json").write_text(
        json.dumps(
            {
                "counts": counts,
                "curve": curve,
                "shuffled_image_control": shuffled,
                "phases": phases,
                "args": vars(args),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
