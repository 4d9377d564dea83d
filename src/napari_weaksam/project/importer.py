"""Import image files and volumes into a project: every readable file becomes items.

A file that cannot be read is listed with the reason and skipped; the others go on. Each source is
stored in its own transaction, so an interrupted import keeps what it had finished.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..hashing import content_sha256
from ..io import ImageData, ImageReadError, check_item_layout, is_supported, read_image
from ..io.validation import check_finite
from .catalog import NewItem
from .project import Project

if TYPE_CHECKING:
    from ..slides.settings import TilingSettings
    from ..slides.tiling import Tiling

Progress = Callable[[int, int, str], None]

_MULTI_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".nii.gz")


@dataclass
class ImportReport:
    """What an import did: sources added, items created, files skipped and why."""

    added: list[str] = field(default_factory=list)
    items: int = 0
    already_present: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{len(self.added)} files imported ({self.items} items), "
                f"{len(self.already_present)} already in the project, "
                f"{len(self.skipped)} skipped")
        return text + "".join(f"\n  skipped {p}: {why}" for p, why in self.skipped)


def display_stem(path: Path) -> str:
    """File name without its (possibly double) suffix: ``brain1.nii.gz`` → ``brain1``."""
    name = path.name
    for suffix in _MULTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# Sub-folders that hold ground truth in the usual data-set layouts (masks/, labels/, gt/, …):
# importing them as images would make masks into items (and score them against themselves).
_TRUTH_FOLDER = re.compile(
    r"^(masks?|labels?|gt|ground[_-]?truths?|annotations?|segmentations?)([_-].*)?$", re.I)


def find_images(folder: Path, skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Supported files below ``folder`` (a ``.zarr`` folder counts as one file), sorted.

    Hidden folders and ground-truth folders below it are left out (the latter listed in
    ``skipped``); give such a folder itself to import what it holds.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        for name in list(dirnames):
            if name.lower().endswith(".zarr"):
                dirnames.remove(name)
                found.append(here / name)
            elif name.startswith("."):
                dirnames.remove(name)
            elif _TRUTH_FOLDER.match(name):
                dirnames.remove(name)
                if skipped is not None:
                    skipped.append((str(here / name), "a ground-truth folder (masks/labels), "
                                    "not images; give it on its own to import it as images"))
        found += [here / n for n in filenames if not n.startswith(".") and is_supported(here / n)]
    return sorted(found)


def import_images(project: Project, paths: Iterable[Path | str], *, copy: bool = False,
                  base: Path | None = None, progress: Progress | None = None,
                  tiling: TilingSettings | None = None) -> ImportReport:
    """Import files (or every supported file below folders) into ``project``.

    ``copy`` puts a copy inside the project folder, so the project stays whole when moved.
    Slides (SVS, NDPI, SCN files, and pyramids over 4096 px on a side) are cut into tile
    items, with ``tiling`` or its defaults; ``tiling`` cuts every other 2D image into tiles too.
    """
    steps = iter_import(project, paths, copy=copy, base=base, tiling=tiling)
    while True:
        try:
            done, total, name = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress:
            progress(done, total, name)


def iter_import(project: Project, paths: Iterable[Path | str], *, copy: bool = False,
                base: Path | None = None, tiling: TilingSettings | None = None,
                ) -> Generator[tuple[int, int, str], None, ImportReport]:
    """Like :func:`import_images`, as a generator of ``(done, total, file name)``."""
    report = ImportReport()
    files = _expand(paths, report.skipped)
    base = base or _common_base(files)
    taken = project.catalog.item_names()
    for index, file in enumerate(files):
        yield index, len(files), file.name
        try:
            _import_one(project, file, base, copy, taken, report, tiling)
        except ImageReadError as error:
            report.skipped.append((str(file), str(error)))
        except OSError as error:
            report.skipped.append((str(file), f"cannot read the file: {error}"))
    yield len(files), len(files), "done"
    return report


def _expand(paths: Iterable[Path | str], skipped: list[tuple[str, str]]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        # normpath folds "a/../b" without following links: a path recorded is a real place
        path = Path(os.path.normpath(Path(raw).expanduser().absolute()))
        if path.is_dir() and not path.name.lower().endswith(".zarr"):
            files += find_images(path, skipped)
        else:
            files.append(path)
    return files


def _common_base(files: list[Path]) -> Path:
    if not files:
        return Path.cwd()
    return Path(os.path.commonpath([f.parent for f in files]))


def _import_one(project: Project, file: Path, base: Path, copy: bool, taken: set[str],
                report: ImportReport, tiling_settings: TilingSettings | None = None) -> None:
    if project.catalog.source_by_path(str(file)) is not None:
        report.already_present.append(str(file))
        return
    if not file.exists():
        raise ImageReadError(f"{file}: no such file")
    image = read_image(file, lazy=True)
    check_finite(image.data, file)  # found at import, not minutes into a run
    check_item_layout(image)
    tiling = _slide_tiling(image, tiling_settings)
    items = _unique_items(image, file, base, taken, tiling)
    relpath = _relpath(project.root, file)
    if copy and relpath is None:
        relpath = _copy_into(project.root, file, base)
    taken.update(i.name for i in items)
    kind = "slide" if tiling is not None else "volume" if image.is_volume else "image"
    project.catalog.add_source(
        path=str(file), relpath=relpath, format=image.format, kind=kind,
        shape=tuple(image.shape), axes=image.axes, dtype=str(image.dtype),
        spacing=tuple(image.spacing), sha256=content_sha256(file), items=items,
        geometry=image.nifti.to_metadata() if image.nifti is not None else None,
        modality=image.modality, tiling=tiling.to_json() if tiling is not None else None,
    )
    report.added.append(str(file))
    report.items += len(items)


#: A pyramidal 2D image with a side longer than this is a slide: it is cut into tiles.
SLIDE_SIDE = 4096


def is_slide(image: ImageData) -> bool:
    """A vendor slide file, or a pyramid (TIFF, OME-TIFF, OME-Zarr) bigger than SLIDE_SIDE."""
    big = max(image.shape[image.axes.index("Y")], image.shape[image.axes.index("X")]) > SLIDE_SIDE
    return not image.is_volume and (image.format == "slide" or (bool(image.levels) and big))


def _slide_tiling(image: ImageData, settings: TilingSettings | None) -> Tiling | None:
    """How ``image`` is cut into tiles: always for a slide (:func:`is_slide`), for another 2D
    image only when ``settings`` are given; None: one item per image or slice."""
    from ..slides.settings import TilingSettings
    from ..slides.tiling import plan_tiling

    if image.is_volume or (not is_slide(image) and settings is None):
        return None
    return plan_tiling(image, settings or TilingSettings())


def _items_of(image: ImageData, stem: str, tiling: Tiling | None = None) -> list[NewItem]:
    height, width = _plane_size(image)
    channels = image.shape[image.axes.index("C")] if "C" in image.axes else 1
    if tiling is not None:
        from ..slides.tiling import tile_items

        return tile_items(image, tiling, stem, channels)
    if not image.is_volume:
        return [NewItem(stem, height, width, channels)]
    items = []
    for display in range(image.n_slices):
        source_index = (
            image.nifti.display_slice_to_source(display) if image.nifti is not None else display
        )
        items.append(NewItem(f"{stem} z{source_index:03d}", height, width, channels,
                             slice_index=source_index, display_index=display))
    return items


def _plane_size(image: ImageData) -> tuple[int, int]:
    return image.shape[image.axes.index("Y")], image.shape[image.axes.index("X")]


def _unique_items(image: ImageData, file: Path, base: Path, taken: set[str],
                  tiling: Tiling | None = None) -> list[NewItem]:
    """Items named after the file; a relative path (and a number) when a name is taken."""
    stem = display_stem(file)
    try:
        rel = file.relative_to(base).with_name(stem).as_posix()
    except ValueError:
        rel = file.with_name(stem).as_posix()
    candidates = [stem, rel] + [f"{rel} ({n})" for n in range(2, 10_000)]
    first = _items_of(image, stem, tiling)   # tiles are planned (tissue found) once
    for candidate in candidates:
        items = [replace(i, name=candidate + i.name[len(stem):]) for i in first]
        if not any(item.name in taken for item in items):
            return items
    raise ImageReadError(f"{file}: no free item name; rename the file")


def _relpath(root: Path, file: Path) -> str | None:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return None


def _copy_into(root: Path, file: Path, base: Path) -> str:
    try:
        rel = file.relative_to(base)
    except ValueError:
        rel = Path(file.name)
    images = root / "images"
    target = _free_path(images / rel)
    if ".." in rel.parts or images not in target.parents:  # copies stay inside the project
        target = _free_path(images / file.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if file.is_dir():
        shutil.copytree(file, target, dirs_exist_ok=True)
    else:
        shutil.copy2(file, target)
    return target.relative_to(root).as_posix()


def _free_path(path: Path) -> Path:
    """``path``, or ``name (2).ext`` … when something is already there."""
    if not path.exists():
        return path
    stem, suffix = display_stem(path), path.name[len(display_stem(path)):]
    n = 2
    while (candidate := path.with_name(f"{stem} ({n}){suffix}")).exists():
        n += 1
    return candidate
