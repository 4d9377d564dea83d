"""EP-SAM with each prompt strategy on the development sets: pseudo-label Dice per stage.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_prompts.py --data ebhi lgg --strategies points boxes boxes+mask \
        [--selection ids agreement] [--round-targets selected carried]

For each set a project is made from the images and their image-level tags (kept in ``--workdir``
with its embedding cache, as in ``bench_epsam.py``). The CAM source is trained and the initial
masks are built once; then, per strategy, the retraining engine runs from the pretrained decoder
(zero-shot, preliminary, ``--rounds`` rounds), generating and training with that strategy's
prompts. Ground-truth masks are read only afterwards, to score each stage's proposals: Dice on
positive items and the false-positive rate on negative ones. ``--subset N`` makes the project from
N images only (every k-th of each tag, half tumour, half not), for a quicker run.
``--selection`` compares the rules that pick each round's training masks (``retrain/selection.py``),
``--round-targets`` whether a round trains on those alone or on every item's latest kept mask.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import time
from pathlib import Path

import torch
from bench_epsam import add_epsam_options, initial_mask_dice, progress_printer, settings_from
from bench_weakmedsam import DATA, SETS, open_project, require_data

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.evaluation import find_truth, score_predictions
from napari_weaksam.method_settings import (
    PROMPT_STRATEGIES,
    ROUND_TARGETS,
    SELECTION_RULES,
    RetrainSettings,
)
from napari_weaksam.methods.cam_sources import TagData
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.epsam import METHOD, build_candidates, make_cam_source
from napari_weaksam.methods.tag_matrix import tag_matrix
from napari_weaksam.methods.weakmedsam import embed_items
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.project.tags_csv import import_tags
from napari_weaksam.retrain import EngineInputs, RetrainingEngine


def open_subset(name: str, workdir: Path, size: int | None) -> Project:
    """The set's project (``bench_weakmedsam.open_project``), or one of ``size`` images: evenly
    spaced through the sorted file names of each tag, half of each."""
    if size is None:
        return open_project(name, workdir)
    folder, _masks = SETS[name]
    root = workdir / f"{name}-{size}-project"
    if Project.is_project(root):
        return Project.open(root)
    with open(DATA / folder / "labels.csv", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["filename"])
    chosen = []
    for label in ("1", "0"):
        names = [row["filename"] for row in rows if row["label"] == label]
        step = max(1, len(names) // (size // 2))
        chosen += names[::step][:size // 2]
    project = Project.create(root)
    import_images(project, [DATA / folder / "images" / file for file in chosen])
    import_tags(project, DATA / folder / "labels.csv", class_name="tumour")  # others: skipped
    return project


def prepare(project, backbone, settings, report) -> tuple[list, list, list, dict[str, float]]:
    """Items, candidates (CAM + initial mask) and class values; seconds per step."""
    context = RunContext(project, backbone, report)
    items = project.catalog.items()
    classes = project.catalog.classes()
    train_index, labels = tag_matrix(project, items, classes)
    seconds = {}
    start = time.perf_counter()
    embeddings = embed_items(context, items)
    seconds["embed"] = time.perf_counter() - start
    start = time.perf_counter()
    source = make_cam_source(settings, backbone)
    source.fit(TagData(project, items, embeddings, train_index, labels), context)
    seconds["classifier"] = time.perf_counter() - start
    start = time.perf_counter()
    candidates = build_candidates(context, items, embeddings, classes, source, settings)
    seconds["initial masks"] = time.perf_counter() - start
    return items, candidates, [c.label_value for c in classes], seconds


def bench(name: str, args: argparse.Namespace) -> None:
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    settings = settings_from(args)
    folder, masks = SETS[name]
    report = progress_printer() if args.verbose else (lambda _p: None)
    with open_subset(name, args.workdir, args.subset) as project:
        items, candidates, values, seconds = prepare(project, backbone, settings, report)
        pretrained = backbone.decoder_state()
        truth = find_truth(project, DATA / folder / masks)
        prep = " / ".join(f"{v:.0f}" for v in seconds.values())
        print(f"{name}: {len(items)} items, {len(candidates)} to segment; initial CAM mask Dice "
              f"{initial_mask_dice(candidates, truth):.3f}; seconds embed / classifier / "
              f"initial masks {prep}\n", flush=True)
        print(header(args.rounds))
        for strategy, rule, carry in itertools.product(args.strategies, args.selection,
                                                       args.round_targets):
            engine_settings = dataclasses.replace(settings.engine, prompts=strategy,
                                                  min_prompt_iou=args.min_iou, selection=rule,
                                                  round_targets=carry)
            inputs = EngineInputs(project, backbone, items, values, candidates, METHOD,
                                  {"benchmark": "prompts", "prompts": strategy}, pretrained)
            start = time.perf_counter()
            stages = RetrainingEngine(inputs, engine_settings, progress=report).run(
                zero_shot=True)
            total = time.perf_counter() - start
            summaries = [score_predictions(project, truth, round_id=s.round_id).summary()
                         for s in stages]
            cells = [f"{s['dice_mean']:.3f}" for s in summaries]
            print(f"| {name} | {strategy} | {rule}, {carry} | {' | '.join(cells)} | "
                  f"{summaries[-1]['fp_rate']:.3f} | {len(stages[-1].kept)} | "
                  f"{total / 60:.1f} min |", flush=True)
        backbone.load_decoder_state(pretrained)


def header(rounds: int) -> str:
    stages = ["zero-shot", "preliminary"] + [f"round {n}" for n in range(1, rounds + 1)]
    return (f"| set | prompts | selection | {' | '.join(stages)} | FP rate (neg, last) | "
            f"kept (last) | time |\n" + "|---" * (7 + rounds) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_epsam_options(parser)
    parser.add_argument("--strategies", nargs="+", choices=PROMPT_STRATEGIES,
                        default=list(PROMPT_STRATEGIES))
    parser.add_argument("--selection", nargs="+", choices=SELECTION_RULES, default=["ids"],
                        help="rules that pick each round's training masks")
    parser.add_argument("--round-targets", nargs="+", choices=ROUND_TARGETS,
                        default=[RetrainSettings.round_targets],
                        help="what a round trains on")
    parser.add_argument("--min-iou", type=float, default=0.0,
                        help="drop a box's mask below this predicted IoU")
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="only N images of each set (half tumour), for a quicker run")
    parser.add_argument("--verbose", action="store_true", help="print every stage's progress")
    args = parser.parse_args()
    require_data(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}; CAM {args.cam_source} ({args.arch} at {args.input_size} px, "
          f"{args.classifier_epochs} epochs); decoder {args.decoder_epochs} epochs/round, "
          f"{args.rounds} rounds, {args.points} points, min IoU {args.min_iou}; "
          f"images: {args.subset or 'all'}\n")
    for name in args.data:
        bench(name, args)


if __name__ == "__main__":
    main()
