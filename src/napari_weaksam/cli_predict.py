"""``weaksam predict``: a finished round's models segment new images (no tags, no training).

The images are imported into the project (slides as tiles, as ``add`` does) and their proposals
are a new round that names the round whose models made them, so they can be reviewed, exported
and evaluated like any other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_model import add_model_options, backbone_from, precision_for_workers
from .project import Project, ProjectError
from .project.rounds import Round


def add_predict_command(sub: argparse._SubParsersAction) -> None:
    from .cli_options import add_dask_options, add_settings_flags
    from .settings_fields import options_by_flag
    from .slides.settings import TilingSettings

    predict = sub.add_parser(
        "predict", help="segment new images with a finished round's models (no tags needed)")
    predict.add_argument("project", type=Path)
    predict.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    predict.add_argument("--round", type=int, dest="round_id",
                         help="the round whose models segment (default: the latest finished "
                         "round of a method that can)")
    predict.add_argument("--copy", action="store_true",
                         help="copy the files into the project folder (portable project)")
    add_model_options(predict)
    add_dask_options(predict, "segment")
    predict.set_defaults(run=cmd_predict, tiling_flags=add_settings_flags(
        predict, [("tiling", options_by_flag(TilingSettings))]))


def cmd_predict(args: argparse.Namespace) -> int:
    from .cli_options import given_flags
    from .methods.context import RunContext
    from .methods.prediction import choose_round, import_for_prediction, predict
    from .methods.registry import get_method
    from .settings_fields import settings_from_flags
    from .slides.settings import TilingSettings
    from .terminal_progress import StageBars

    given = given_flags(args, args.tiling_flags)
    tiling = settings_from_flags(TilingSettings, given, "tiling") if given else None
    with Project.open(args.project) as project:
        round_ = choose_round(project, args.round_id)
        method = get_method(round_.method)
        if method.predictor is None:
            raise ProjectError(f"round {round_.id} is {method.title}'s, which cannot segment new "
                               "images from a round yet; tag them and run it")
        items, report = import_for_prediction(project, args.inputs, copy=args.copy,
                                              tiling=tiling)
        for path, why in report.skipped:
            print(f"  skipped {path}: {why}")
        if args.dask is not None:
            return _predict_on_cluster(args, project, round_, items)
        backbone = backbone_from(args, project)
        bars = StageBars()
        try:
            report = predict(RunContext(project, backbone, bars), round_, items)
        finally:
            bars.close()
    print(report.summary())
    return 0


def _predict_on_cluster(args: argparse.Namespace, project: Project, round_: Round,
                        items: list) -> int:
    import time

    from .cohort import ModelSpec, predict_on_cluster

    spec = ModelSpec.from_args(args, precision_for_workers(args, project))
    address = None if args.dask == "local" else args.dask
    start = time.perf_counter()
    round_id = predict_on_cluster(project, spec, round_, items, address=address,
                                  workers=args.workers)
    where = f"the cluster at {address}" if address else f"{args.workers} local workers"
    print(f"{len(items)} new items segmented with the models of round {round_.id} on {where} "
          f"in {time.perf_counter() - start:.1f} s (round {round_id})")
    return 0
