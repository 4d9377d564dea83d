"""The ``weaksam`` commands for whole slides: tag a slide, stitch its tiles, export its labels.

Slides are imported by ``create`` and ``add`` (a slide file always becomes tile items; the
``--tile-*`` flags choose how, and cut other 2D images into tiles too).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .project import Project, ProjectError, Source


def add_slide_commands(sub: argparse._SubParsersAction) -> None:
    tag = sub.add_parser("tag-slide", help="tag a whole slide: negative, or classes present")
    tag.add_argument("project", type=Path)
    tag.add_argument("slide", help="the slide's file name (or path) as imported")
    what = tag.add_mutually_exclusive_group(required=True)
    what.add_argument("--negative", action="store_true",
                      help="no class anywhere in the slide: every tile becomes negative")
    what.add_argument("--present", nargs="+", metavar="CLASS",
                      help="classes present somewhere in the slide (its tiles stay unknown)")
    tag.set_defaults(run=cmd_tag_slide)

    stitch = sub.add_parser("stitch", help="stitch tile labels into each slide's label pyramid")
    stitch.add_argument("project", type=Path)
    stitch.add_argument("slides", nargs="*", help="slides to stitch (default: every slide)")
    stitch.set_defaults(run=cmd_stitch)

    export = sub.add_parser("export-slide",
                            help="write a slide's stitched labels (.ome.zarr, .ome.tif, .geojson)")
    export.add_argument("project", type=Path)
    export.add_argument("slide", help="the slide's file name (or path) as imported")
    export.add_argument("output", type=Path,
                        help="file to write; its suffix chooses the format")
    export.set_defaults(run=cmd_export_slide)


def find_slide(project: Project, name: str) -> Source:
    """The slide imported from a file called ``name`` (or at that path)."""
    slides = [s for s in project.catalog.sources() if s.is_slide]
    wanted = Path(name)
    found = [s for s in slides if Path(s.path) == wanted.expanduser().absolute()
             or Path(s.path).name == wanted.name or Path(s.path).stem == wanted.name]
    if len(found) == 1:
        return found[0]
    known = ", ".join(Path(s.path).name for s in slides) or "none"
    if not found:
        raise ProjectError(f"{name}: no slide of that name in the project (slides: {known})")
    raise ProjectError(f"{name}: several slides have that name; give the full path")


def cmd_tag_slide(args: argparse.Namespace) -> int:
    with Project.open(args.project) as project:
        source = find_slide(project, args.slide)
        classes = set()
        for name in args.present or []:
            found = project.catalog.class_by_name(name)
            if found is None:
                raise ProjectError(f"{name}: no class of that name; add it first")
            classes.add(found.id)
        tiles = project.catalog.tag_slide(source.id, classes)
        name = Path(source.path).name
        if classes:
            print(f"{name}: tagged with {', '.join(args.present)}; its untagged tiles stay "
                  "unknown (the classifier decides them)")
        else:
            print(f"{name}: negative; {tiles} tiles tagged with no finding")
    return 0


def cmd_stitch(args: argparse.Namespace) -> int:
    from .slides.stitching import stitch_slide

    with Project.open(args.project) as project:
        sources = ([find_slide(project, n) for n in args.slides] if args.slides
                   else [s for s in project.catalog.sources() if s.is_slide])
        if not sources:
            raise ProjectError(f"{project.root}: has no slides to stitch")
        for source in sources:
            start = time.perf_counter()
            report = stitch_slide(project, source)
            print(f"{Path(source.path).name}: {report.reviewed} reviewed and {report.proposed} "
                  f"proposed tiles stitched ({report.without_label} without a label), "
                  f"{report.levels} levels, {time.perf_counter() - start:.1f} s -> {report.path}")
    return 0


def cmd_export_slide(args: argparse.Namespace) -> int:
    from .slides.export import export_slide_labels

    with Project.open(args.project, read_only=True) as project:
        source = find_slide(project, args.slide)
        print(f"wrote {export_slide_labels(project, source, args.output)}")
    return 0
