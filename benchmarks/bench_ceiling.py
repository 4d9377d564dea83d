"""What the frozen SAM embeddings allow: Retrain's mask head trained on many reference masks,
and SAM asked with the reference masks' own boxes. Upper bounds for the learning loop.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_ceiling.py --data lgg ebhi --masks 20 50 100 all --seeds 0 1 2

The items are split in two halves (by patient where the file names tell one: lgg_mri_dev's
``TCGA_…`` prefix; else at random). On the training half, K positives get their reference mask
as a corrected review and every other item only its tag, as a project would after K corrections;
``all`` gives every item of the half its reference mask. Retrain's mask head (its defaults, no
method round: it reads no proposals) trains on that and segments the other half's positives
(the tags decide presence): its own mask, and SAM's answer to its boxes + mask. The last rows
ask SAM with one box per component of each reference mask (no head): where SAM's answer stops
even when it is told where to look. Reference masks are read only as the training half's reviews
and by the scorer; the other half's masks only by the scorer.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from bench_sammix import typed_flags
from bench_weakmedsam import SETS, open_project, require_data, truth_of

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.method_settings import ReviewRetrainSettings, SegNetSettings
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.map_labels import label_from_maps
from napari_weaksam.methods.tag_presence import tagged_presence
from napari_weaksam.methods.weakmedsam import embed_items
from napari_weaksam.metrics import dice
from napari_weaksam.project import LabelState
from napari_weaksam.retrain.from_reviews import (
    segment_item,
    starting_head,
    supervision,
    train_head,
)
from napari_weaksam.segnet.network import build_network, network_input
from napari_weaksam.segnet.predictor import segment_image as segment_with_network
from napari_weaksam.segnet.run import train_network
from napari_weaksam.segnet.training import SegNetData, class_targets

PATIENT = re.compile(r"^(TCGA_[A-Z0-9]+_[A-Z0-9]+)_")


def halves(names: list[str], seed: int) -> np.ndarray:
    """(N,) bool: the training half, whole patients together where names tell them."""
    rng = np.random.default_rng(seed)
    groups = [m.group(1) if (m := PATIENT.match(n)) else n for n in names]
    unique = sorted(set(groups))
    chosen = set(rng.permutation(unique)[: len(unique) // 2])
    return np.array([g in chosen for g in groups])


def head_rows(project, backbone, embeddings, truth, train, k, seed,
              flags: dict) -> dict[str, float]:
    """Train the head on ``k`` reference masks of the training half (None: all its items) and
    score the other half's positives."""
    items, classes = project.catalog.items(), project.catalog.classes()
    value = classes[0].label_value
    rng = np.random.default_rng(seed)
    positives = [i for i, item in enumerate(items) if train[i] and truth[item.id].any()]
    taught = (np.flatnonzero(train) if k is None
              else rng.permutation(positives)[: min(k, len(positives))])
    reviewed = {items[i].id: (LabelState.CORRECTED, truth[items[i].id].astype(np.uint8) * value)
                for i in taught}
    # the test half teaches nothing: no tags, no masks (as if it were new images)
    shown = [i for i in range(len(items)) if train[i]]
    settings = ReviewRetrainSettings(**({"prior": False, "seed": seed} | flags))
    context = RunContext(project, backbone)
    size = backbone.preprocessing.size
    data = supervision(project, [items[i] for i in shown], classes,
                       [embeddings[i] for i in shown], size, {}, settings, reviewed)
    head, _ = starting_head(project, None, classes, data, settings, backbone, set())
    start = time.perf_counter()
    train_head(context, head, data, settings, warm=False)
    seconds = time.perf_counter() - start

    def segment(i: int, tagged: np.ndarray | None, prompts: str) -> np.ndarray:
        return segment_item(backbone, head, embeddings[i], tagged, classes,
                            replace(settings, prompts=prompts))[0]

    return score_other_half(project, truth, train, segment) | {
        "masks": len(taught), "seconds": seconds}


def unet_rows(project, backbone, embeddings, truth, train, seed) -> dict[str, float]:
    """The segmentation network (its defaults) trained on every reference mask of the
    training half, scored on the other half's positives: its own mask and SAM's answer to its
    boxes + mask."""
    items, classes = project.catalog.items(), project.catalog.classes()
    value = classes[0].label_value
    settings = SegNetSettings(seed=seed)
    shown = [i for i in range(len(items)) if train[i]]
    inputs = torch.stack([network_input(project.item_image(items[i]), settings.size).half()
                          for i in shown])
    targets = torch.stack([class_targets(truth[items[i].id].astype(np.uint8) * value, classes,
                                         settings.size).half() for i in shown])
    data = SegNetData(inputs, targets, torch.ones((len(shown), len(classes))))
    torch.manual_seed(seed)
    network = build_network(len(classes), settings.features)
    start = time.perf_counter()
    train_network(RunContext(project, backbone), network, data, data.teaching(), settings)
    seconds = time.perf_counter() - start

    def segment(i: int, tagged: np.ndarray | None, prompts: str) -> np.ndarray:
        return segment_with_network(network, project.item_image(items[i]), settings.size,
                                    tagged, classes, replace(settings, prompts=prompts),
                                    backbone, embeddings[i])[0]

    return score_other_half(project, truth, train, segment) | {
        "masks": len(shown), "seconds": seconds}


def score_other_half(project, truth, train: np.ndarray,
                     segment: Callable[[int, np.ndarray | None, str], np.ndarray],
                     ) -> dict[str, float]:
    """Mean Dice over the positives outside the training half of ``segment(index, tagged,
    prompts)``'s label image, for the learner's own mask ("none") and SAM's answer to its
    boxes + mask; "test": how many positives."""
    items, classes = project.catalog.items(), project.catalog.classes()
    tags = project.catalog.all_tags()
    scores: dict[str, list[float]] = {"none": [], "boxes+mask": []}
    for i, item in enumerate(items):
        if train[i] or not truth[item.id].any():
            continue
        tagged = tagged_presence(item, tags, classes)
        for prompts, found in scores.items():
            found.append(dice(segment(i, tagged, prompts) > 0, truth[item.id]))
    return {p: float(np.mean(s)) for p, s in scores.items()} | {"test": len(scores["none"])}


def reference_boxes(project, backbone, embeddings, truth, prompts: str) -> float:
    """SAM's answer to one box per component of each positive's reference mask."""
    items, classes = project.catalog.items(), project.catalog.classes()
    scores = []
    for i, item in enumerate(items):
        reference = truth[item.id]
        if not reference.any():
            continue
        label, _ = label_from_maps(np.ones(1), reference[None].astype(np.float32), np.ones(1, bool),
                                   classes, gate=0.5, threshold=0.5, prompts=prompts,
                                   backbone=backbone, embedding=embeddings[i])
        scores.append(dice(label > 0, reference))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["lgg", "ebhi"])
    parser.add_argument("--masks", nargs="+", default=["20", "50", "100", "all"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--retrain", nargs="*", default=[], metavar="FLAG=VALUE",
                        help="the head's options other than Retrain's defaults, e.g. epochs=20")
    parser.add_argument("--unet", action="store_true",
                        help="also train the segmentation network on the half's masks")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-bench-loop")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    require_data(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}\n")
    print("| set | what trains the head | seed | reference masks | test positives | "
          "Dice, head's own mask | Dice, SAM's answer to its boxes + mask | head training |")
    print("|---|---|---|---|---|---|---|---|")
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    for name in args.data:
        with open_project(name, args.workdir) as project:
            items = project.catalog.items()
            truth = {item.id: truth_of(name, project, item) for item in items}
            embeddings = embed_items(RunContext(project, backbone), items)
            flags = typed_flags(args.retrain, "retrain")
            for seed in args.seeds:
                train = halves([item.name for item in items], seed)
                for k in args.masks:
                    row = head_rows(project, backbone, embeddings, truth, train,
                                    None if k == "all" else int(k), seed, flags)
                    what = ("every item of the half, its mask" if k == "all"
                            else f"{k} masks + the half's tags")
                    print(f"| {name} | {what} | {seed} | {row['masks']} | {row['test']} | "
                          f"{row['none']:.3f} | {row['boxes+mask']:.3f} | "
                          f"{row['seconds']:.0f} s |", flush=True)
                if args.unet:
                    row = unet_rows(project, backbone, embeddings, truth, train, seed)
                    print(f"| {name} | the segmentation network (U-Net, 128 px), every item of "
                          f"the half, its mask | {seed} | {row['masks']} | {row['test']} | "
                          f"{row['none']:.3f} | {row['boxes+mask']:.3f} | "
                          f"{row['seconds']:.0f} s |", flush=True)
            for prompts in ("boxes", "boxes+mask"):
                print(f"| {name} | no head: SAM asked with the reference's boxes "
                      f"({prompts}) | – | all | all | – | "
                      f"{reference_boxes(project, backbone, embeddings, truth, prompts):.3f} "
                      f"| – |", flush=True)


if __name__ == "__main__":
    main()
