"""SAM-Mix's tag classifier on the development sets: slice-level AUC and the CAM's Dice at τ.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_tag_classifier.py --data ebhi lgg [--size 128] [--epochs N] \
        [--train-max N] [--test-max N] [--alpha 0.5 0.25] [--trunk resnet18 local] [--views 1 8] \
        [--threads 2]

For each set the groups (EBHI-Seg: ``case_id``, LGG: ``patient_id``) are split into a training
and a held-out part (seeded), the classifier is trained on the image-level tags of (at most
``--train-max`` of) the training images, and scored: the AUC of its probabilities on the
held-out images, and the Dice of the thresholded CAM (``map ≥ τ``, no gate) on the positive
images of both parts: the tagged images are the ones a weakly supervised method labels, the
held-out ones show how it does on new images. Ground-truth masks are read only to score.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time

import imageio.v3 as iio
import numpy as np
import torch
from bench_weakmedsam import DATA, require_data
from sklearn.metrics import roc_auc_score

from napari_weaksam.cam.tag_classifier import TagClassifier, tag_inputs, train_tag_classifier
from napari_weaksam.method_settings import (
    CAM_VIEWS,
    TAG_CLASSIFIER_TRUNKS,
    TagClassifierSettings,
)
from napari_weaksam.metrics import dice

SETS = {"lgg": ("lgg_mri_dev", "masks", "patient_id"),
        "ebhi": ("ebhi_seg_colon", "masks_tumour", "case_id")}


@dataclasses.dataclass
class Split:
    train: list[dict]
    test: list[dict]


def split(name: str, test_share: float, train_max: int, test_max: int, seed: int) -> Split:
    """Groups shuffled with ``seed``; the first ``test_share`` of them held out. Each part is
    then subsampled (seeded, classes kept in proportion) to at most ``*_max`` images."""
    folder, _masks, group = SETS[name]
    with open(DATA / folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    groups = sorted({row[group] for row in rows})
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    held_out = set(groups[:max(1, round(test_share * len(groups)))])
    train = [row for row in rows if row[group] not in held_out]
    test = [row for row in rows if row[group] in held_out]
    return Split(_subsample(train, train_max, rng), _subsample(test, test_max, rng))


def _subsample(rows: list[dict], limit: int, rng: np.random.Generator) -> list[dict]:
    if limit <= 0 or len(rows) <= limit:
        return rows
    kept = []
    for label in ("0", "1"):
        part = [row for row in rows if row["label"] == label]
        share = round(limit * len(part) / len(rows))
        kept += [part[i] for i in sorted(rng.choice(len(part), share, replace=False))]
    return kept


def load(name: str, rows: list[dict], size: int) -> tuple[torch.Tensor, np.ndarray]:
    folder = SETS[name][0]
    images = tag_inputs((iio.imread(DATA / folder / "images" / row["filename"]) for row in rows),
                        size)
    labels = np.array([[float(row["label"])] for row in rows], dtype=np.float32)
    return images, labels


def truth_of(name: str, row: dict) -> np.ndarray:
    folder, masks, _group = SETS[name]
    return iio.imread(DATA / folder / masks / row["filename"]) > 0


def evaluate(name: str, model: TagClassifier, rows: list[dict], images: torch.Tensor,
             threshold: float, views: int = 1) -> tuple[np.ndarray, list[float]]:
    """Probabilities of every image, Dice of the thresholded CAM on every positive one."""
    probabilities, dices = [], []
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        truths = [truth_of(name, row) for row in chunk]
        p, cams = model.normalised_cam(images[start:start + 32].float(),
                                       size=truths[0].shape, views=views)
        probabilities.append(p[:, 0].numpy())
        for cam, truth in zip(cams[:, 0].numpy(), truths, strict=True):
            if truth.any():
                dices.append(dice(cam >= threshold, truth))
    return np.concatenate(probabilities), dices


def bench(name: str, alpha: float, trunk: str, args: argparse.Namespace) -> str:
    parts = split(name, args.test_share, args.train_max, args.test_max, args.seed)
    settings = TagClassifierSettings(input_size=args.size, epochs=args.epochs,
                                     min_steps=args.min_steps, focal_alpha=alpha,
                                     seed=args.seed, trunk=trunk)
    start = time.perf_counter()
    train_images, train_labels = load(name, parts.train, args.size)
    test_images, test_labels = load(name, parts.test, args.size)
    t_load = time.perf_counter() - start
    start = time.perf_counter()
    model, losses = train_tag_classifier(
        train_images, train_labels, settings,
        on_epoch=lambda e, n, loss: print(f"  {name} {trunk} α={alpha}: epoch {e}/{n} "
                                          f"loss {loss:.4f}", flush=True))
    t_train = time.perf_counter() - start
    rows = []
    for views in args.views:
        start = time.perf_counter()
        train_p, train_dice = evaluate(name, model, parts.train, train_images,
                                       settings.cam_threshold, views)
        test_p, test_dice = evaluate(name, model, parts.test, test_images,
                                     settings.cam_threshold, views)
        t_eval = time.perf_counter() - start
        rows.append(f"| {name} | {trunk} | {args.seed} | {views} | "
                    f"{len(parts.train)} ({int(train_labels.sum())}+) | "
                    f"{len(parts.test)} ({int(test_labels.sum())}+) | {args.size} | "
                    f"{len(losses)} | {alpha:g} | {losses[0]:.4f} → {losses[-1]:.4f} | "
                    f"{roc_auc_score(train_labels[:, 0], train_p):.3f} | "
                    f"{roc_auc_score(test_labels[:, 0], test_p):.3f} | "
                    f"{np.mean(train_dice):.3f} | {np.mean(test_dice):.3f} | "
                    f"{t_load:.0f} s | {t_train:.0f} s | {t_eval:.0f} s |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["ebhi", "lgg"])
    parser.add_argument("--size", type=int, default=TagClassifierSettings.input_size)
    parser.add_argument("--epochs", type=int, default=TagClassifierSettings.epochs)
    parser.add_argument("--min-steps", type=int, default=TagClassifierSettings.min_steps)
    parser.add_argument("--alpha", type=float, nargs="+",
                        default=[TagClassifierSettings.focal_alpha])
    parser.add_argument("--trunk", nargs="+", choices=TAG_CLASSIFIER_TRUNKS,
                        default=[TagClassifierSettings.trunk])
    parser.add_argument("--views", nargs="+", type=int, choices=CAM_VIEWS, default=[1],
                        help="CAM of the image alone (1) or averaged over its 8 rotations and "
                             "reflections")
    parser.add_argument("--train-max", type=int, default=0, help="0: every training image")
    parser.add_argument("--test-max", type=int, default=0, help="0: every held-out image")
    parser.add_argument("--test-share", type=float, default=0.3,
                        help="share of the groups (cases, patients) held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    require_data(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
          f"τ = {TagClassifierSettings.cam_threshold}, γ = {TagClassifierSettings.focal_gamma}\n",
          flush=True)
    rows = [bench(name, alpha, trunk, args) for name in args.data for trunk in args.trunk
            for alpha in args.alpha]
    print("\n| set | trunk | seed | CAM views | train images | held-out images | px | epochs | α | "
          "loss first → last | AUC (train) | AUC (held-out) | CAM Dice pos (train) | "
          "CAM Dice pos (held-out) | load | train | eval |")
    print("|" + "---|" * 17)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
