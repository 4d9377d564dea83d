"""WeakMedSAM's settings chosen on half of lgg_mri_dev's patients, reported on the other half.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_patient_split.py --seeds 0 2 4 [--workdir DIR]
    python benchmarks/bench_patient_split.py --report-only [--workdir DIR]

The 20 patients, sorted by id, are dealt alternately into halves A and B (each institution's
patients fall in both). Each half is a project of its own, as a new cohort would be: its slices,
its tags, its embeddings, its classifiers (the method's defaults, one ensemble per seed; seeds
0, 2, 4 share no member). For every slice tagged with tumour, the benchmark computes the CAM
once per seed and scores every post-processing setting on it: one classifier or the ensemble,
the walk's β and steps (0 steps: the CAM itself), the threshold (a fixed one or Otsu's per
image), and SAM answering one box per component of the thresholded map, alone or with the map
as its mask prompt, once or asked again with the boxes of its own answer; and, for the method's
walk, only the components whose evidence (their peak) is at least 0.5, 0.8 or 1 × the
strongest one's, as the map's own mask or with SAM's boxes. Slices tagged without
tumour get no mask whatever the setting (the tags decide), so false positives are not a matter
of these settings.

Then, in both directions, the setting with the best mean Dice over the seeds on one half is
reported on the other: mean Dice on positive slices (with its range over seeds), Dice per
patient, the median predicted / reference area, and lesions under 500 px apart. Reference masks
are read only by the scorer. Every score is kept in ``scores.csv`` in the work folder, so
``--report-only`` prints the tables again without computing; the classifiers are kept there too
(``models-HALF-SEED.pt``), so a second run with new settings only scores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from skimage.filters import threshold_otsu

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.method_settings import WeakMedSamSettings
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.tag_matrix import read_tags
from napari_weaksam.methods.weakmedsam import (
    WALK_GRID,
    CachedEmbeddings,
    cam_at_item_size,
    classifier_checkpoint,
    ensemble_from_checkpoint,
    fill_embeddings,
    train_on_tags,
    walk_graph,
)
from napari_weaksam.metrics import dice
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.project.tags_csv import import_tags
from napari_weaksam.prompts.decode import answer_region
from napari_weaksam.refine import walk_cam
from napari_weaksam.refine.components import supported_components

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "lgg_mri_dev"
SMALL = 500                       # px: lesions reported apart (the held-out set's weak spot)
THRESHOLDS = ("0.3", "0.4", "0.5", "0.6", "0.7", "otsu")
BETAS = (5.0, 10.0, 20.0)
STEPS = (0, 2, 4, 8)
SAM_THRESHOLDS = ("0.3", "0.5", "0.7")
SAM_OUTPUTS = ("sam-boxes", "sam-boxes+mask", "sam-boxes-twice")
#: component evidence (share of the strongest component's peak) tried with SAM's boxes
KEEP_SHARES = (0.5, 0.8, 1.0)
FIELDS = ("half", "seed", "config", "patient", "image", "dice", "predicted", "reference")
DEFAULTS = WeakMedSamSettings()
WALK = f"ens{DEFAULTS.ensemble} beta{DEFAULTS.beta:g} steps{DEFAULTS.steps} " \
       f"thr{DEFAULTS.threshold:g}"
KEEP = f" keep{DEFAULTS.component_evidence:g}" if DEFAULTS.component_evidence > 0 else ""
#: the method's defaults, the same walk and SAM's boxes on every component (the previous
#: default), and the walk's thresholded map as the mask (the original)
DEFAULT_CONFIG = ("walk" if DEFAULTS.mask_prompts == "none"
                  else f"sam-{DEFAULTS.mask_prompts}") + f" {WALK}{KEEP}"
EVERY_COMPONENT_CONFIG = f"sam-boxes {WALK}"
MAP_CONFIG = f"walk {WALK}"


def patient_halves(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """Patients sorted by id, dealt alternately into halves A and B."""
    patients = sorted({row["patient_id"] for row in rows})
    return {"A": patients[0::2], "B": patients[1::2]}


def half_project(workdir: Path, half: str, patients: list[str],
                 rows: list[dict[str, str]]) -> Project:
    """The half's own project: its slices and their tags (made once, then reopened)."""
    root = workdir / f"lgg-half-{half}"
    if Project.is_project(root):
        return Project.open(root)
    chosen = [row for row in rows if row["patient_id"] in patients]
    tags = workdir / f"labels-{half}.csv"
    with tags.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["filename", "label"])
        writer.writeheader()
        writer.writerows({"filename": r["filename"], "label": r["label"]} for r in chosen)
    project = Project.create(root)
    import_images(project, [DATA / "images" / row["filename"] for row in chosen])
    import_tags(project, tags, class_name="tumour")
    return project


def score_half(project: Project, half: str, patient_of: dict[str, str], backbone,
               seeds: list[int], writer: csv.DictWriter, workdir: Path) -> None:
    """Train the classifiers per seed and score every setting on the half's positive slices."""
    tagged = read_tags(project)
    items = tagged.items
    load = lambda i: project.item_image(items[i])  # noqa: E731
    cache = fill_embeddings(RunContext(project, backbone), items, range(len(items)))
    embeddings = CachedEmbeddings(cache, load, len(items))
    positives = [index for index, row in zip(tagged.train_index, tagged.labels, strict=True)
                 if row.any()]
    for seed in seeds:
        settings = dataclasses.replace(DEFAULTS, seed=seed)
        start = time.perf_counter()
        saved = workdir / f"models-{half}-{seed}.pt"
        if saved.is_file():
            models = ensemble_from_checkpoint(torch.load(saved, weights_only=True),
                                              backbone.device)
        else:
            models, _ = train_on_tags(load, embeddings, tagged.train_index, tagged.labels,
                                      settings, backbone, lambda _p: None, None)
            torch.save(classifier_checkpoint(models), saved)
        print(f"half {half} seed {seed}: classifiers {time.perf_counter() - start:.0f} s",
              flush=True)
        start = time.perf_counter()
        for index in positives:
            name = Path(project.catalog.source(items[index].source_id).path).name
            truth = iio.imread(DATA / "masks" / name) > 0
            masks = item_masks(backbone, models, load(index), embeddings[index], settings)
            writer.writerows(
                {"half": half, "seed": seed, "config": config, "patient": patient_of[name],
                 "image": name, "dice": f"{dice(mask, truth):.4f}",
                 "predicted": int(mask.sum()), "reference": int(truth.sum())}
                for config, mask in masks.items())
        print(f"half {half} seed {seed}: {len(positives)} slices scored in "
              f"{time.perf_counter() - start:.0f} s", flush=True)


def item_masks(backbone, models, image: np.ndarray, embedding,
               settings: WeakMedSamSettings) -> dict[str, np.ndarray]:
    """Every setting's mask of one positive slice, by setting name."""
    member_cams = [cam_at_item_size(backbone, [model], image, embedding, settings)[1][0]
                   for model in models]
    mean = np.mean(member_cams, axis=0)
    cams = {1: member_cams[0], len(models): mean / max(float(mean.max()), 1e-6)}
    graphs = {beta: walk_graph(backbone, embedding, dataclasses.replace(settings, beta=beta))[0]
              for beta in BETAS}
    masks: dict[str, np.ndarray] = {}
    for ensemble, cam in cams.items():
        for threshold in THRESHOLDS:
            masks[f"cam ens{ensemble} thr{threshold}"] = thresholded(cam, threshold)
        for beta, transition in graphs.items():
            for steps in STEPS[1:]:
                refined = walk_cam(cam, transition, grid_size=WALK_GRID, steps=steps)
                for threshold in THRESHOLDS:
                    masks[f"walk ens{ensemble} beta{beta:g} steps{steps} thr{threshold}"] = \
                        thresholded(refined, threshold)
                if (ensemble, beta, steps) == (len(models), settings.beta, settings.steps):
                    masks |= sam_masks(backbone, embedding, refined, ensemble, beta, steps)
    return masks


def sam_masks(backbone, embedding, refined: np.ndarray, ensemble: int, beta: float,
              steps: int) -> dict[str, np.ndarray]:
    """SAM's answers to the boxes of the thresholded refined map (and the map as mask prompt)."""
    masks = {}
    walk = f"ens{ensemble} beta{beta:g} steps{steps}"
    for threshold in SAM_THRESHOLDS:
        region = thresholded(refined, threshold)
        if not region.any():
            answers = dict.fromkeys(SAM_OUTPUTS, region)
        else:
            boxes = answer_region(backbone, embedding, refined, region, "boxes")
            again = answer_region(backbone, embedding, boxes.astype(float), boxes, "boxes") \
                if boxes.any() else boxes
            answers = {"sam-boxes": boxes, "sam-boxes-twice": again,
                       "sam-boxes+mask": answer_region(backbone, embedding, refined, region,
                                                       "boxes+mask")}
        for output in SAM_OUTPUTS:
            masks[f"{output} {walk} thr{threshold}"] = answers[output]
        for share in KEEP_SHARES:
            kept = supported_components(region, refined, share)
            masks[f"walk {walk} thr{threshold} keep{share:g}"] = kept
            masks[f"sam-boxes {walk} thr{threshold} keep{share:g}"] = \
                answers["sam-boxes"] if np.array_equal(kept, region) else \
                answer_region(backbone, embedding, refined, kept, "boxes")   # SAM asked once
    return masks


def thresholded(refined: np.ndarray, threshold: str) -> np.ndarray:
    if threshold == "otsu":
        return refined > threshold_otsu(refined) if np.ptp(refined) > 0 else refined > 1
    return refined > float(threshold)


# ---- report ---------------------------------------------------------------------------------

def read_scores(path: Path) -> dict:
    """scores[half][config][seed] = list of (patient, dice, predicted, reference)."""
    scores: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    with path.open() as handle:
        for row in csv.DictReader(handle):
            scores[row["half"]][row["config"]][int(row["seed"])].append(
                (row["patient"], float(row["dice"]), int(row["predicted"]),
                 int(row["reference"])))
    return scores


def mean_dice(by_seed: dict) -> float:
    return float(np.mean([np.mean([r[1] for r in rows]) for rows in by_seed.values()]))


def summary(by_seed: dict) -> str:
    """Mean Dice (seed range) | per-patient range | area ratio | small lesions."""
    per_seed = [np.mean([r[1] for r in rows]) for rows in by_seed.values()]
    rows = [r for seed_rows in by_seed.values() for r in seed_rows]
    patients = defaultdict(list)
    for patient, value, _, _ in rows:
        patients[patient].append(value)
    per_patient = [np.mean(v) for v in patients.values()]
    ratio = np.median([p / r for _, _, p, r in rows])
    small = [r for r in rows if r[3] < SMALL]
    small_dice = np.mean([r[1] for r in small]) if small else float("nan")
    small_ratio = np.median([r[2] / r[3] for r in small]) if small else float("nan")
    return (f"{np.mean(per_seed):.3f} ({min(per_seed):.3f}–{max(per_seed):.3f}) | "
            f"{min(per_patient):.2f}–{max(per_patient):.2f} (median "
            f"{np.median(per_patient):.2f}) | {ratio:.2f} | "
            f"{small_dice:.3f}, ratio {small_ratio:.1f} ({len(small) // len(by_seed)} slices)")


def report(scores: dict, top: int) -> None:
    print("\n| chosen on | reported on | setting | Dice on the choosing half | Dice, positive "
          "slices (seed range) | Dice per patient | area ratio (median) | lesions < 500 px |")
    print("|---|---|---|---|---|---|---|---|")
    for chooser, target in (("A", "B"), ("B", "A")):
        ranked = sorted(scores[chooser], key=lambda c: -mean_dice(scores[chooser][c]))
        shown = {"best": ranked[0], "defaults": DEFAULT_CONFIG,
                 "SAM's boxes, every component": EVERY_COMPONENT_CONFIG,
                 "map's mask": MAP_CONFIG}
        for label, config in shown.items():
            print(f"| {chooser} ({label}) | {target} | {config} | "
                  f"{mean_dice(scores[chooser][config]):.3f} | "
                  f"{summary(scores[target][config])} |")
    for half in ("A", "B"):
        ranked = sorted(scores[half], key=lambda c: -mean_dice(scores[half][c]))
        other = "B" if half == "A" else "A"
        print(f"\nTop {top} on half {half} (Dice there | on half {other}):")
        for config in ranked[:top]:
            print(f"  {config:45s} {mean_dice(scores[half][config]):.3f} | "
                  f"{mean_dice(scores[other][config]):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-patient-split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=8, help="settings listed per half")
    parser.add_argument("--report-only", action="store_true",
                        help="print the tables from the work folder's scores.csv")
    args = parser.parse_args()
    scores_path = args.workdir / "scores.csv"
    if not args.report_only:
        if not DATA.is_dir():
            raise SystemExit(f"{DATA} not found: the benchmark needs the development data")
        torch.set_num_threads(args.threads)
        args.workdir.mkdir(parents=True, exist_ok=True)
        with (DATA / "labels.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        patient_of = {row["filename"]: row["patient_id"] for row in rows}
        backbone = load_backbone("litemedsam")
        backbone.set_precision(args.precision)
        with scores_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            for half, patients in patient_halves(rows).items():
                print(f"half {half}: {', '.join(patients)}", flush=True)
                with half_project(args.workdir, half, patients, rows) as project:
                    score_half(project, half, patient_of, backbone, args.seeds, writer,
                               args.workdir)
    report(read_scores(scores_path), args.top)


if __name__ == "__main__":
    main()
