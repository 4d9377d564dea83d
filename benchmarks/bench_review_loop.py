"""The learning loop with a simulated reviewer: does Retrain with K reviewed items improve the
images nobody reviewed, and how long does it take?

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_review_loop.py --data lgg ebhi --base-method weakmedsam \
        --masks 0 5 10 20 50 --order least-confident random --seeds 0 1 2 --plot loop.png

For each set: a project is made from the images and their tags (``labels.csv``), and the base
method runs once from the tags (its round is reused by later runs of this script). Then, for each
review order and seed, from no reviews: the simulated reviewer works the review queue (least
confident first, by the latest proposals, as the Review tab orders it; or in a random order)
until K items are reviewed: it accepts a proposal whose Dice to the reference mask is ≥ 0.9 and
otherwise records the reference mask as the correction. Then Retrain runs exactly as the Train
tab's button does (incremental: the previous Retrain's head is continued), and the latest
proposals are scored **on the items nobody reviewed**: Dice on positives, the median predicted /
reference area, the false-positive rate on negatives (any predicted pixel), and the Retrain's
wall-clock time. Reference masks are read only by the reviewer and the scorer.

``--engine segnet``: the U-Net learns instead (``weaksam segnet``; the first K trains a new
network, each later K continues it, as the Train tab's Retrain does after a U-Net round).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from bench_sammix import score, typed_flags
from bench_weakmedsam import SETS, open_project, require_data, truth_of

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.image_kinds import project_kind
from napari_weaksam.methods.registry import get_method
from napari_weaksam.metrics import dice
from napari_weaksam.project import LabelState, Project

ACCEPT_DICE = 0.9
ORDERS = ("least-confident", "random")


def base_round(project: Project, method: str, backbone, flags: dict) -> int:
    """The project's finished round of ``method`` (run from the tags when there is none, with
    the defaults for the project's kind of image)."""
    for _attempt in range(2):
        for round_ in reversed(project.rounds.rounds()):
            if round_.method == method and round_.status == "done":
                return round_.id
        chosen = get_method(method)   # its last stage's round is the one found next
        kind = project_kind(project)  # as the Train tab and `weaksam run` choose its options
        settings = chosen.settings_for(kind.kind if kind else None, flags)
        chosen.run(RunContext(project, backbone), settings)
    raise RuntimeError(f"{method} finished no round")


def reset(project: Project, round_id: int) -> None:
    """No reviews, and ``round_id``'s proposals current again (later rounds' are dropped)."""
    from napari_weaksam.project.restore import restore_round

    for item_id, state in project.labels.states().items():
        if state is not LabelState.PROPOSED:
            project.labels.clear_review(item_id)
    restore_round(project, round_id)


def review(project: Project, truth: dict[int, np.ndarray], count: int, order: str,
           rng: np.random.Generator) -> int:
    """Review unreviewed items in ``order`` until ``count`` are reviewed; how many were
    accepted as proposed."""
    states = project.labels.states()
    reviewed = sum(s is not LabelState.PROPOSED for s in states.values())
    waiting = [i for i in truth if states.get(i) is LabelState.PROPOSED]
    if order == "random":
        queue = list(rng.permutation(waiting))
    else:
        queue = sorted(waiting, key=lambda i: project.labels.latest_proposal(i).confidence)
    value = project.catalog.classes()[0].label_value
    accepted = 0
    for item_id in queue[:max(0, count - reviewed)]:
        item_id = int(item_id)
        proposed = project.labels.proposal_mask(project.labels.latest_proposal(item_id)) > 0
        reference = truth[item_id]
        if _agreement(proposed, reference) >= ACCEPT_DICE:
            project.labels.review(item_id, LabelState.ACCEPTED)
            accepted += 1
        else:
            project.labels.review(item_id, LabelState.CORRECTED, reference.astype(np.uint8) * value)
    return accepted


def _agreement(proposed: np.ndarray, reference: np.ndarray) -> float:
    if not proposed.any() and not reference.any():
        return 1.0
    return dice(proposed, reference)


def curve(project: Project, truth, backbone, base: int, order: str, seed: int,
          args: argparse.Namespace) -> Iterator[dict]:
    """One row per K (printed as it comes)."""
    reset(project, base)
    retrain = get_method(args.engine)   # with the defaults for the project's kind, as the dock
    kind = getattr(project_kind(project), "kind", None)
    flags = {"seed": seed} | typed_flags(args.retrain, args.engine)
    rng = np.random.default_rng(seed)
    for count in args.masks:
        accepted = review(project, truth, count, order, rng) if count else 0
        seconds, warm = 0.0, None
        if count:
            start = time.perf_counter()
            report = retrain.run(RunContext(project, backbone), retrain.settings_for(kind, flags))
            seconds = time.perf_counter() - start
            warm = getattr(report, "warm_start_round", None)
        start_of = "warm" if warm is not None else (
            "new head" if args.engine == "retrain" else "new network")
        yield score(project, truth) | {"k": count, "order": order, "seed": seed,
                                       "accepted": accepted, "seconds": seconds,
                                       "start": start_of,
                                       "before": base_dice(project, truth, base)}


def base_dice(project: Project, truth: dict[int, np.ndarray], base: int) -> float:
    """Mean Dice of the base round's proposals on the positives nobody has reviewed yet: what
    Retrain is compared with on the same items (removing the reviewed items alone changes the
    mean, as the least confident are the worst)."""
    states = project.labels.states()
    rows = project.db.rows("SELECT id, item_id FROM proposals WHERE round_id = ?", (base,))
    scores = [dice(project.labels.proposal_mask(project.labels.proposal(row["id"])) > 0,
                   truth[row["item_id"]])
              for row in rows if truth[row["item_id"]].any()
              and states.get(row["item_id"]) is LabelState.PROPOSED]
    return float(np.mean(scores))


def print_row(name: str, method: str, row: dict) -> None:
    took = f"{row['seconds']:.0f} s ({row['start']})" \
        if row["k"] else "–"
    print(f"| {name} | {method} | {row['order']} | {row['seed']} | {row['k']} | "
          f"{row['accepted']} | {row['positives']} | {row['before']:.3f} | {row['dice']:.3f} | "
          f"{row['dice'] - row['before']:+.3f} | {row['ratio']:.2f} | "
          f"{row['fp']:.3f} | {took} |", flush=True)


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """Dice on unreviewed positives against K: one panel per set, one curve per base method
    and order (the mean over seeds, with their spread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 5.5),
                                squeeze=False)
    methods = sorted({r["method"] for rows in results.values() for r in rows})
    colours = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for axis, (name, rows) in zip(axes[0], sorted(results.items()), strict=True):
        curves = sorted({(r["method"], r["order"]) for r in rows})
        for method, order in curves:
            mine = [r for r in rows if (r["method"], r["order"]) == (method, order)]
            ks = sorted({r["k"] for r in mine})
            at = [[r for r in mine if r["k"] == k] for k in ks]
            means = [np.mean([r["dice"] for r in rs]) for rs in at]
            low = [m - min(r.get("low", r["dice"]) for r in rs)
                   for m, rs in zip(means, at, strict=True)]
            high = [max(r.get("high", r["dice"]) for r in rs) - m
                    for m, rs in zip(means, at, strict=True)]
            seeds = max(len({s for r in rs for s in r["seeds"]}) for rs in at)
            axis.errorbar(ks, means, yerr=[low, high], marker="o", capsize=3,
                          color=colours[method], linestyle="--" if order == "random" else "-",
                          label=f"{method}, {order} ({seeds} seed{'s' if seeds > 1 else ''})")
        axis.set(title=SETS[name][0] if name in SETS else name, xlabel="reviewed items K",
                 ylabel="Dice, unreviewed positives")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"\nplot: {path}")


def read_tables(paths: list[Path]) -> dict[str, list[dict]]:
    """The rows this script printed (saved output files), by set, to plot them again. A row
    may stand for several seeds already averaged: seeds ``0 1 2`` and Dice ``0.699
    (0.695–0.704)`` (the mean, then the range)."""
    results: dict[str, list[dict]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) not in (11, 13) or not cells[4].isdigit():
                continue
            dice_cell = 7 if len(cells) == 11 else 8   # older outputs: no base-round column
            dice, _, spread = cells[dice_cell].partition(" (")
            row = {"method": cells[1], "order": cells[2], "seeds": cells[3].split(),
                   "k": int(cells[4]), "dice": float(dice)}
            if spread:
                row["low"], row["high"] = (float(v) for v in spread.rstrip(")").split("–"))
            results.setdefault(cells[0], []).append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["lgg", "ebhi"])
    parser.add_argument("--base-method", default="weakmedsam")
    parser.add_argument("--base-round", type=int,
                        help="this round of the base method (default: its latest)")
    parser.add_argument("--masks", nargs="+", type=int, default=[0, 5, 10, 20, 50])
    parser.add_argument("--order", nargs="+", choices=ORDERS, default=list(ORDERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--retrain", nargs="*", default=[], metavar="FLAG=VALUE",
                        help="Retrain options other than its defaults, e.g. prompts=boxes")
    parser.add_argument("--engine", choices=("retrain", "segnet"), default="retrain",
                        help="what learns from the reviews: Retrain (the button), or the "
                             "segmentation network trained again on the method round's "
                             "proposals and the reviews (--retrain then sets its options)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-bench-loop")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--replot", nargs="+", type=Path, metavar="OUTPUT",
                        help="only draw --plot from saved outputs of this script")
    args = parser.parse_args()
    if args.replot:
        plot(read_tables(args.replot), args.plot)
        return
    require_data(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}\n")
    print("| set | base | order | seed | reviewed K | accepted | unreviewed positives | "
          "base round's Dice on them | Dice (pos) | gain on the same items | "
          "area ratio (median) | FP rate (neg) | Retrain |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    results: dict[str, list[dict]] = {}
    for name in args.data:
        with open_project(name, args.workdir) as project:
            truth = {item.id: truth_of(name, project, item) for item in project.catalog.items()}
            base = args.base_round or base_round(project, args.base_method, backbone, {})
            results[name] = []
            for order in args.order:
                for seed in args.seeds:
                    for row in curve(project, truth, backbone, base, order, seed, args):
                        print_row(name, args.base_method, row)
                        results[name].append(row | {"method": args.base_method,
                                                    "seeds": [str(seed)]})
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
