"""SAM-Mix on the development sets with K masks from a simulated reviewer, K = 0, 5, 20, 50.

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_sammix.py --data lgg ebhi --masks 0 5 20 50 [--scope decoder] \
        [--trunk resnet18|local]

For each set: a project is made from the images and their image-level tags (``labels.csv``); SAM-Mix
runs from the tags alone (K = 0). The simulated reviewer then works the review queue least
confident first: it corrects the next proposals with the reference masks until K items are
reviewed, and SAM-Mix runs again (every run from scratch, with every mask reviewed so far). Scored
only on the items nobody reviewed: Dice on positives (tumour in the reference), the
predicted / reference area ratio (median over positives), and the false-positive rate on
negatives (any predicted pixel). Reference masks are read only by the reviewer and the scorer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_weakmedsam import SETS, open_project, require_data, truth_of

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.method_settings import TAG_CLASSIFIER_TRUNKS
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.image_kinds import project_kind
from napari_weaksam.methods.registry import get_method
from napari_weaksam.metrics import dice
from napari_weaksam.project import LabelState, Project

METHOD = get_method("sammix")


def review_least_confident(project: Project, truth: dict[int, np.ndarray], count: int,
                           queue_round: int | None = None) -> None:
    """Correct the least confident unreviewed proposals with the reference until ``count``
    items are reviewed; confidence from the latest proposals, or from round ``queue_round``'s
    (so that runs of another K queue the same items as the run they continue)."""
    states = project.labels.states()
    reviewed = [i for i, s in states.items() if s is LabelState.CORRECTED]
    if count <= len(reviewed):   # nothing to review (a fresh project has no proposals yet)
        return
    if queue_round is None:
        confidence = {i: project.labels.latest_proposal(i).confidence for i in truth}
    else:
        confidence = {row["item_id"]: row["confidence"] for row in project.labels.db.rows(
            "SELECT item_id, confidence FROM proposals WHERE round_id = ?", (queue_round,))}
    queue = sorted((confidence[i], i) for i in truth if states.get(i) is LabelState.PROPOSED)
    value = project.catalog.classes()[0].label_value
    for _confidence, item_id in queue[:max(0, count - len(reviewed))]:
        project.labels.review(item_id, LabelState.CORRECTED,
                              truth[item_id].astype(np.uint8) * value)


def typed_flags(pairs: list[str], method: str) -> dict:
    """``["prompts=boxes", "prior=1"]`` → ``method``'s flags with values of the right type."""
    options = get_method(method).options()
    flags = {}
    for pair in pairs:
        flag, value = pair.split("=", 1)
        kind = options[flag][0].kind
        flags[flag] = bool(int(value)) if kind is bool else kind(value)
    return flags


def score(project: Project, truth: dict[int, np.ndarray]) -> dict[str, float]:
    states = project.labels.states()
    dices, ratios, false_positive = [], [], []
    for item_id, reference in truth.items():
        if states.get(item_id) is not LabelState.PROPOSED:
            continue
        predicted = project.labels.proposal_mask(project.labels.latest_proposal(item_id)) > 0
        if reference.any():
            dices.append(dice(predicted, reference))
            ratios.append(predicted.sum() / reference.sum())
        else:
            false_positive.append(predicted.any())
    return {"dice": float(np.mean(dices)), "ratio": float(np.median(ratios)),
            "fp": float(np.mean(false_positive)) if false_positive else float("nan"),
            "positives": len(dices)}


def bench(name: str, args: argparse.Namespace) -> None:
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    flags = {"scope": args.scope, "seed": args.seed}
    if args.trunk:
        flags["trunk"] = args.trunk
    flags |= typed_flags(args.set, METHOD.name)
    with open_project(name, args.workdir) as project:   # embeddings cached across runs
        for item_id, state in project.labels.states().items():   # a rerun starts unreviewed
            if state is not LabelState.PROPOSED:
                project.labels.clear_review(item_id)
        truth = {item.id: truth_of(name, project, item) for item in project.catalog.items()}
        kind = project_kind(project)   # its defaults, as the Train tab and `weaksam run`
        for count in args.masks:
            review_least_confident(project, truth, count, args.queue_round)
            start = time.perf_counter()
            settings = METHOD.settings_for(kind.kind if kind else None, flags)
            report = METHOD.run(RunContext(project, backbone), settings)
            seconds = time.perf_counter() - start
            result = score(project, truth)
            print(f"| {name} | {settings.classifier.trunk} | {args.scope} | {args.seed} | "
                  f"{count} | {result['positives']} | "
                  f"{report.masks} | {result['dice']:.3f} | {result['ratio']:.2f} | "
                  f"{result['fp']:.3f} | "
                  f"{seconds:.0f} s ({report.seconds.get('training', 0):.0f} s training) |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["lgg", "ebhi"])
    parser.add_argument("--masks", nargs="+", type=int, default=[0, 5, 20, 50])
    parser.add_argument("--scope", default="decoder", choices=("decoder", "decoder+lora"))
    parser.add_argument("--trunk", choices=TAG_CLASSIFIER_TRUNKS,
                        help="the tag classifier's trunk (default: the project's kind's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FLAG=VALUE",
                        help="other SAM-Mix options, e.g. mask-focal-weight=20")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-bench-sammix")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queue-round", type=int, default=None,
                        help="queue the reviewer by this round's confidence (default: the "
                             "latest proposals'), to add a K to an earlier run")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    require_data(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}\n")
    print("| set | classifier | SAM trains | seed | reviewed items | unreviewed positives | "
          "masks with tumour | Dice (pos) | "
          "area ratio (median) | FP rate (neg) | run time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.data:
        bench(name, args)


if __name__ == "__main__":
    main()
