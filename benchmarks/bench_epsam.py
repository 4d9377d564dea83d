"""EP-SAM on the development sets: pseudo-label Dice per stage (like its Table 5), time per stage.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_epsam.py --data ebhi lgg --precision bf16

For each set a project is made from the images and their image-level tags (``labels.csv``; the
project, with its embedding cache, is kept in ``--workdir`` so a second run skips encoding), then
EP-SAM runs with a zero-shot stage. Ground-truth masks are read only afterwards, to score: Dice on
positive items (tumour in the mask) for the initial CAM masks and for every stage's pseudo-labels,
and the false-positive rate on negative items.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_weakmedsam import DATA, SETS, open_project, require_data

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.cam.adl_training import AdlTraining
from napari_weaksam.evaluation import find_truth, score_predictions
from napari_weaksam.methods.cam_sources import TagData
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.epsam import (
    EpSamSettings,
    build_candidates,
    make_cam_source,
    run_epsam,
)
from napari_weaksam.methods.tag_matrix import tag_matrix
from napari_weaksam.methods.weakmedsam import embed_items
from napari_weaksam.metrics import dice
from napari_weaksam.retrain import DecoderTraining, RetrainSettings


def settings_from(args: argparse.Namespace) -> EpSamSettings:
    return EpSamSettings(
        cam_source=args.cam_source,
        classifier=AdlTraining(arch=args.arch, input_size=args.input_size,
                               epochs=args.classifier_epochs, seed=args.seed,
                               adl_drop_rate=args.adl_drop_rate),
        engine=RetrainSettings(
            rounds=args.rounds, prompt_points=args.points, seed=args.seed,
            decoder=DecoderTraining(epochs=args.decoder_epochs, points=args.points,
                                    seed=args.seed),
        ),
        zero_shot=True, save_maps=False,
    )


def add_epsam_options(parser: argparse.ArgumentParser) -> None:
    """The data sets, work folder, precision and the EP-SAM options :func:`settings_from`
    reads (this benchmark's and ``bench_prompts.py``'s)."""
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["ebhi", "lgg"])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-bench")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--cam-source", default="adl", choices=("adl", "weakmedsam"))
    parser.add_argument("--arch", default="resnet18", choices=("resnet18", "resnet50"))
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--classifier-epochs", type=int, default=15)
    parser.add_argument("--adl-drop-rate", type=float, default=0.0)
    parser.add_argument("--decoder-epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)


def progress_printer():
    last = {"stage": None, "time": time.perf_counter()}

    def report(progress) -> None:
        if progress.stage != last["stage"]:
            now = time.perf_counter()
            print(f"    [{now - last['time']:6.0f} s] {progress.stage}", flush=True)
            last["stage"] = progress.stage
        if progress.loss is not None and progress.done == progress.total:
            print(f"      loss {progress.loss:.4f}", flush=True)

    return report


def initial_mask_dice(candidates, truth: dict[int, np.ndarray]) -> float:
    by_item = {c.item.id: c.initial for c in candidates}
    scores = [dice(by_item.get(item_id, np.zeros_like(mask)), mask)
              for item_id, mask in truth.items() if mask.any()]
    return float(np.mean(scores))


def bench_cam(name: str, args: argparse.Namespace) -> None:
    """Classifier and initial masks only: Dice of the initial masks on positive items."""
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    settings = settings_from(args)
    folder, masks = SETS[name]
    with open_project(name, args.workdir) as project:
        items = project.catalog.items()
        classes = project.catalog.classes()
        train_index, labels = tag_matrix(project, items, classes)
        embeddings = embed_items(RunContext(project, backbone), items)
        start = time.perf_counter()
        source = make_cam_source(settings, backbone)
        source.fit(TagData(project, items, embeddings, train_index, labels),
                   RunContext(project, backbone))
        t_fit = time.perf_counter() - start
        candidates = build_candidates(RunContext(project, backbone), items, embeddings, classes,
                                      source, settings)
        truth = find_truth(project, DATA / folder / masks)
    print(f"| {name} | ADL drop rate {args.adl_drop_rate} | initial-mask Dice "
          f"{initial_mask_dice(candidates, truth):.3f} | classifier {t_fit:.0f} s |", flush=True)


def bench(name: str, args: argparse.Namespace) -> str:
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    if args.compile:
        backbone.compile_encoder()
    folder, masks = SETS[name]
    with open_project(name, args.workdir) as project:
        start = time.perf_counter()
        report = run_epsam(RunContext(project, backbone, progress_printer()), settings_from(args))
        total = time.perf_counter() - start
        truth = find_truth(project, DATA / folder / masks)
        cells = [f"{initial_mask_dice(report.candidates, truth):.3f}"]
        fp = []
        for stage in report.stages:
            summary = score_predictions(project, truth, round_id=stage.round_id).summary()
            cells.append(f"{summary['dice_mean']:.3f}")
            fp.append(f"{summary['fp_rate']:.3f}")
    times = [f"{v:.0f}" for v in report.seconds.values()]
    times += [f"{sum(s.seconds.values()):.0f}" for s in report.stages]
    row = (f"| {name} | {report.items} | {len(report.candidates)} | {' | '.join(cells)} | "
           f"{fp[-1]} | {' / '.join(times)} | {total / 60:.1f} min |")
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_epsam_options(parser)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cam-only", nargs="*", type=float, metavar="DROP_RATE",
                        help="only compare initial CAM masks for these ADL drop rates")
    args = parser.parse_args()
    require_data(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}; CAM {args.cam_source} ({args.arch} at {args.input_size} px, "
          f"{args.classifier_epochs} epochs); decoder {args.decoder_epochs} epochs/round, "
          f"{args.points} points\n")
    stages = " | ".join(["zero-shot", "preliminary"] + [f"round {n}"
                                                      for n in range(1, args.rounds + 1)])
    print(f"| set | items | to segment | initial CAM mask | {stages} | FP rate (neg, last) | "
          "seconds: embed / classifier / initial masks / per stage | total |")
    print("|---" * (9 + args.rounds) + "|")
    for name in args.data:
        if args.cam_only:
            for rate in args.cam_only:
                args.adl_drop_rate = rate
                bench_cam(name, args)
        else:
            bench(name, args)


if __name__ == "__main__":
    main()
