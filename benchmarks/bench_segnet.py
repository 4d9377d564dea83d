"""The segmentation network (U-Net) trained on a method round's pseudo-labels, tags only: does it
beat the pseudo-labels it learnt from, and how long does it take?

Run from the repository root (needs the shared data folder next to the repository)::

    python benchmarks/bench_segnet.py --data lgg ebhi --base-method weakmedsam \
        --seeds 0 1 2 [--segnet epochs=10 size=160 prompts=boxes]

For each set: the project made by ``bench_weakmedsam.py`` (images, tags, cached embeddings) and
its base method's finished round (run from the tags when there is none; ``--base-round N`` picks
one). Every review is cleared, the base round's proposals made current, and the segmentation
network trains on them and the tags and proposes for every item. Printed per seed: Dice on the
positive items, the median predicted / reference area, the false-positive rate on negatives (any
predicted pixel) and the seconds per stage, for the base round and for the network. Reference
masks are read only by the scorer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_review_loop import base_round, reset
from bench_sammix import score, typed_flags
from bench_weakmedsam import SETS, open_project, require_data, truth_of

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.registry import get_method

HEADER = ("| set | source | seed | Dice (positives) | area ratio (median) | FP rate | "
          "seconds |\n|---|---|---|---|---|---|---|")


def bench(name: str, args: argparse.Namespace) -> list[str]:
    backbone = load_backbone("litemedsam")
    backbone.set_precision(args.precision)
    segnet = get_method("segnet")
    rows = []
    with open_project(name, args.workdir) as project:
        truth = {item.id: truth_of(name, project, item) for item in project.catalog.items()}
        base = args.base_round or base_round(project, args.base_method, backbone, {})
        reset(project, base)
        before = score(project, truth)
        rows.append(_row(name, f"{args.base_method} round {base}", "—", before, None))
        print(rows[-1], flush=True)
        for seed in args.seeds:
            reset(project, base)
            flags = typed_flags(args.segnet, "segnet") | {"seed": seed, "source-round": base}
            start = time.perf_counter()
            report = segnet.run(RunContext(project, backbone), segnet.settings_from_flags(flags))
            seconds = time.perf_counter() - start
            stages = ", ".join(f"{k} {v:.0f}" for k, v in report.seconds.items())
            rows.append(_row(name, "segmentation network", str(seed), score(project, truth),
                             f"{seconds:.0f} ({stages})"))
            print(rows[-1], flush=True)
        reset(project, base)
    return rows


def _row(name: str, source: str, seed: str, result: dict, seconds: str | None) -> str:
    return (f"| {SETS[name][0]} | {source} | {seed} | {result['dice']:.3f} "
            f"({result['positives']}) | {result['ratio']:.2f} | {result['fp']:.3f} | "
            f"{seconds or '—'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(SETS), default=["lgg", "ebhi"])
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "weaksam-bench")
    parser.add_argument("--base-method", default="weakmedsam")
    parser.add_argument("--base-round", type=int, default=0,
                        help="the round to learn from (default: the base method's latest)")
    parser.add_argument("--segnet", nargs="*", default=[], metavar="FLAG=VALUE",
                        help="the network's options, e.g. epochs=10 size=160")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    require_data(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    rows = [row for name in args.data for row in bench(name, args)]
    print("\n" + HEADER + "\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
