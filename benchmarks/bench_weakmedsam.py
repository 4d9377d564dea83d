"""WeakMedSAM on the development sets: raw CAM vs refined pseudo-labels, and time per stage.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_weakmedsam.py --data lgg ebhi --precision bf16 --compile \
        [--cam-input image|embedding] [--ensemble N] [--affinity embedding prompts] \
        [--mask-prompts none boxes boxes+mask] [--component-evidence 0 0.8]

For each set: a project is made from the images and their image-level tags (``labels.csv``), every
item is encoded (cached in the project, so a second run skips it), the classifier is trained on the
tags, and each item is labelled. Ground-truth masks are read only to score the result: Dice on
positive items (tumour in the mask) for the thresholded CAM and for the refined pseudo-label, and
the false-positive rate on negative items (any predicted pixel). ``--mask-prompts`` compares the
final masks: the thresholded refined map (none) or SAM's answer to its boxes, and
``--component-evidence`` which components of the map are kept, on the same classifiers and walk.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.method_settings import (
    AFFINITY_SOURCES,
    CAM_INPUTS,
    MASK_PROMPTS,
    WeakMedSamSettings,
)
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.weakmedsam import (
    embed_items,
    label_item,
    train_on_tags,
)
from napari_weaksam.metrics import dice
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.project.tags_csv import import_tags
from napari_weaksam.refine import threshold_map

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SETS = {"lgg": ("lgg_mri_dev", "masks"), "ebhi": ("ebhi_seg_colon", "masks_tumour")}


def require_data(threads: int) -> None:
    """Stop with a clear message when the development sets are missing; compute on
    ``threads`` threads."""
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the benchmark needs the development data sets")
    torch.set_num_threads(threads)


def open_project(name: str, workdir: Path) -> Project:
    folder, _masks = SETS[name]
    root = workdir / f"{name}-project"
    if Project.is_project(root):
        return Project.open(root)
    project = Project.create(root)
    import_images(project, [DATA / folder / "images"])
    import_tags(project, DATA / folder / "labels.csv", class_name="tumour")
    return project


def truth_of(name: str, project: Project, item) -> np.ndarray:
    folder, masks = SETS[name]
    source = project.catalog.source(item.source_id)
    return iio.imread(DATA / folder / masks / Path(source.path).name) > 0


def score(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float]:
    """Mean Dice over positive items, false-positive rate over negative ones, and the median
    predicted / reference area over positive items."""
    positive = [dice(p, t) for p, t in pairs if t.any()]
    negative = [p.any() for p, t in pairs if not t.any()]
    ratio = np.median([p.sum() / t.sum() for p, t in pairs if t.any()])
    return float(np.mean(positive)), float(np.mean(negative)), float(ratio)


def bench(name: str, args: argparse.Namespace) -> list[str]:
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    if args.compile:
        backbone.compile_encoder()
    settings = WeakMedSamSettings(cam_input=args.cam_input, epochs=args.epochs,
                                  ensemble=args.ensemble, seed=args.seed)
    with open_project(name, args.workdir) as project:
        items = project.catalog.items()
        tags = project.catalog.all_tags()
        start = time.perf_counter()
        embeddings = embed_items(RunContext(project, backbone), items)
        t_embed = time.perf_counter() - start
        train = [i for i, item in enumerate(items) if item.id in tags]
        labels = np.array([[float(bool(tags[items[i].id]))] for i in train], dtype=np.float32)
        start = time.perf_counter()
        if args.classifier_precision == "fp32":   # the classifiers as before bf16 training
            backbone.set_precision("fp32")
        models, _losses = train_on_tags(lambda i: project.item_image(items[i]), embeddings, train,
                                        labels, settings, backbone, lambda _p: None, None)
        backbone.set_precision(args.precision)
        t_train = time.perf_counter() - start
        rows = []
        for source, mask_prompts, share in itertools.product(
                args.affinity, args.mask_prompts, args.component_evidence):
            variant = dataclasses.replace(settings, affinity_source=source,
                                          mask_prompts=mask_prompts, component_evidence=share)
            cam_pairs, refined_pairs = [], []
            start = time.perf_counter()
            for item, embedding in zip(items, embeddings, strict=True):
                result = label_item(backbone, models, project.item_image(item), embedding, [1],
                                    variant)
                truth = truth_of(name, project, item)
                cam_mask = threshold_map(result.cams[0], float(result.probabilities[0]),
                                         variant.threshold, variant.gate)
                cam_pairs.append((cam_mask, truth))
                refined_pairs.append((result.label > 0, truth))
            t_label = time.perf_counter() - start
            cam_dice, cam_fp, _ = score(cam_pairs)
            ref_dice, ref_fp, ratio = score(refined_pairs)
            rows.append(
                f"| {name} | {len(items)} | {settings.cam_input} × {settings.ensemble} | "
                f"{source} | {mask_prompts}, keep ≥ {share:g} | "
                f"{cam_dice:.3f} | {ref_dice:.3f} (area ratio {ratio:.2f}) | "
                f"{cam_fp:.3f} | {ref_fp:.3f} | {t_embed:.0f} s | {t_train:.0f} s | "
                f"{t_label:.0f} s ({t_label / len(items):.2f} s/item) |"
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["lgg", "ebhi"])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-bench")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--classifier-precision", default="encoder", choices=("encoder", "fp32"),
                        help="the classifiers' forward passes: as the encoder (bf16 when it is, "
                             "the method's default) or fp32")
    parser.add_argument("--epochs", type=int, default=WeakMedSamSettings.epochs)
    parser.add_argument("--cam-input", default="image", choices=CAM_INPUTS)
    parser.add_argument("--ensemble", type=int, default=WeakMedSamSettings.ensemble,
                        help="classifiers trained with consecutive seeds, CAMs averaged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--affinity", nargs="+", default=["embedding"], choices=AFFINITY_SOURCES,
                        help="affinity sources to compare (prompts: boxes on a grid)")
    parser.add_argument("--mask-prompts", nargs="+", default=[WeakMedSamSettings.mask_prompts],
                        choices=MASK_PROMPTS, help="final masks to compare (none: the map's)")
    parser.add_argument("--component-evidence", nargs="+", type=float,
                        default=[WeakMedSamSettings.component_evidence],
                        help="component evidence shares to compare (0: every component)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    require_data(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"precision {args.precision}, compile {args.compile}\n")
    print("| set | items | CAM input × classifiers | affinity | mask from | CAM Dice (pos) | "
          "refined Dice (pos) | CAM FP rate (neg) | refined FP rate (neg) | embed | train | "
          "CAM + refine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.data:
        bench(name, args)


if __name__ == "__main__":
    main()
