"""Image-level tags to and from CSV.

Two layouts are read:

* **binary** — a ``filename`` and a ``label`` column (1 = finding present, 0 = absent), for one
  class named by the caller; an optional ``slice_index`` picks a slice of a volume (the voxel
  index along the slice axis, 0-based). Extra columns are ignored. This is the layout of the
  data sets' own ``labels.csv`` / ``slice_labels.csv``.
* **wide** — what :func:`export_tags` writes: ``item, filename, slice_index, tagged`` and one 0/1
  column per class. Untagged items have ``tagged = 0`` and empty class cells.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .catalog import Item, Source
from .errors import ProjectError
from .project import Project

WIDE_COLUMNS = ("item", "filename", "slice_index", "tagged")
_TRUE = {"1", "yes", "true", "y", "present"}
_FALSE = {"0", "no", "false", "n", "absent"}


@dataclass
class TagImportReport:
    applied: int = 0
    unmatched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.applied} items tagged, {len(self.unmatched)} rows matched no item"
        if self.unmatched:
            text += " (e.g. " + ", ".join(self.unmatched[:3]) + ")"
        return text + "".join(f"\n  {e}" for e in self.errors)


def import_tags(project: Project, csv_path: str | Path, *,
                class_name: str = "tumour") -> TagImportReport:
    """Apply the tags in ``csv_path``; rows that fail are reported, the rest saved together."""
    path = Path(csv_path)
    rows, columns = _read_rows(path)
    lookup = _ItemLookup(project)
    report = TagImportReport()
    if "tagged" in columns:
        tags = _wide_tags(project, rows, columns, lookup, report)
    elif "label" in columns:
        tags = _binary_tags(project, rows, lookup, report, class_name)
    else:
        raise ProjectError(
            f"{path}: expected a 'label' column (binary tags) or the columns "
            f"{', '.join(WIDE_COLUMNS)} (a tag export); found {', '.join(columns)}"
        )
    project.catalog.update_tags(tags)
    report.applied = len(tags)
    return report


def export_tags(project: Project, csv_path: str | Path, *, overwrite: bool = False) -> int:
    """Write every item's tags in the wide layout; returns the number of rows.

    Refused: a path inside the project, an existing file unless ``overwrite``, and anything
    that is not a regular file (a folder, a device). A failed write leaves no partial file.
    """
    path = Path(csv_path)
    _check_target(project, path, overwrite)
    classes = project.catalog.classes()
    tags = project.catalog.all_tags()
    sources = {s.id: s for s in project.catalog.sources()}
    tmp = path.with_name(f".{path.name}.partial")
    items = project.catalog.items()
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([*WIDE_COLUMNS, *(c.name for c in classes)])
            for item in items:
                present = tags.get(item.id)
                cells = ["" if present is None else int(c.id in present) for c in classes]
                writer.writerow([
                    item.name, Path(sources[item.source_id].path).name,
                    "" if item.slice_index is None else item.slice_index,
                    int(present is not None), *cells,
                ])
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(items)


def _check_target(project: Project, path: Path, overwrite: bool) -> None:
    project.check_outside(path, "the tags file")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise ProjectError(f"{path}: exists and is not a regular file; give a file name")
        if not overwrite:
            raise ProjectError(f"{path}: already exists; choose another name, or overwrite "
                               "(--overwrite)")
    if not path.parent.is_dir():
        raise ProjectError(f"{path.parent}: no such folder")


def _read_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = [c.strip() for c in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ProjectError(f"{path}: cannot read the tags file ({error})") from error
    if not columns:
        raise ProjectError(f"{path}: the tags file is empty")
    if "filename" not in columns and "item" not in columns:
        raise ProjectError(f"{path}: a tags file needs a 'filename' (or 'item') column")
    rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in rows]
    return rows, columns


def _flag(value: str) -> bool | None:
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def _binary_tags(project: Project, rows: list[dict[str, str]], lookup: _ItemLookup,
                 report: TagImportReport, class_name: str) -> dict[int, dict[int, bool]]:
    """``{item id: {class id: present}}`` for the one class; the items' other tags stay."""
    flags: dict[int, bool] = {}
    for line, row in enumerate(rows, start=2):
        present = _flag(row.get("label", ""))
        if present is None:
            report.errors.append(f"line {line}: label {row.get('label')!r} is not 0/1")
            continue
        found = lookup.find(row, line, report)
        if found is not None:
            flags[found.id] = present
    if not flags:
        return {}
    class_id = project.catalog.ensure_class(class_name).id
    return {item_id: {class_id: present} for item_id, present in flags.items()}


def _wide_tags(project: Project, rows: list[dict[str, str]], columns: list[str],
               lookup: _ItemLookup, report: TagImportReport) -> dict[int, dict[int, bool]]:
    """``{item id: {class id: present}}`` for the CSV's class columns; other classes stay.

    A class column that no applied row marks present creates no class.
    """
    names = [name for name in columns if name not in WIDE_COLUMNS]
    found_flags: dict[int, dict[str, bool]] = {}
    for line, row in enumerate(rows, start=2):
        if not _flag(row.get("tagged", "")):
            continue
        found = lookup.find(row, line, report)
        if found is None:
            continue
        flags = {name: _flag(row.get(name, "")) for name in names}
        bad = [name for name, flag in flags.items() if flag is None]
        if bad:
            report.errors.append(f"line {line}: no 0/1 value for {', '.join(bad)}")
            continue
        found_flags[found.id] = flags
    class_ids = _wide_classes(project, names, found_flags, report)
    return {item_id: {class_ids[n]: f for n, f in flags.items() if n in class_ids}
            for item_id, flags in found_flags.items()}


def _wide_classes(project: Project, names: list[str], found: dict[int, dict[str, bool]],
                  report: TagImportReport) -> dict[str, int]:
    """Class ids of the columns: existing classes, and new ones some row marks present."""
    class_ids = {}
    for name in names:
        existing = project.catalog.class_by_name(name)
        if existing is not None:
            class_ids[name] = existing.id
        elif any(flags[name] for flags in found.values()):
            class_ids[name] = project.catalog.ensure_class(name).id
        else:
            report.errors.append(f"column {name!r}: no item has this class, so it was not "
                                 "created")
    return class_ids


class _ItemLookup:
    """Finds the item a CSV row means: by item name, or by file name (+ slice index)."""

    def __init__(self, project: Project) -> None:
        self.by_name: dict[str, Item] = {}
        self.by_source: dict[tuple[int, int | None], Item] = {}
        for item in project.catalog.items():
            self.by_name[item.name] = item
            self.by_source[(item.source_id, item.slice_index)] = item
        self.sources = project.catalog.sources()

    def find(self, row: dict[str, str], line: int, report: TagImportReport) -> Item | None:
        if row.get("item") and row["item"] in self.by_name:
            return self.by_name[row["item"]]
        name = row.get("filename", "")
        sources = [s for s in self.sources if _path_matches(s, name)]
        if len(sources) > 1:
            report.errors.append(f"line {line}: {name!r} matches {len(sources)} files; "
                                 "give a longer relative path")
            return None
        if not sources:
            report.unmatched.append(name or row.get("item", ""))
            return None
        return self._item_of(sources[0], row, line, report)

    def _item_of(self, source: Source, row: dict[str, str], line: int,
                 report: TagImportReport) -> Item | None:
        if source.kind == "image":
            return self.by_source.get((source.id, None))
        raw = row.get("slice_index", "")
        if not raw.lstrip("-").isdigit():
            report.errors.append(
                f"line {line}: {row.get('filename')} is a volume; give a slice_index per row"
            )
            return None
        item = self.by_source.get((source.id, int(raw)))
        if item is None:
            report.errors.append(f"line {line}: {row.get('filename')} has no slice {raw}")
        return item


def _path_matches(source: Source, name: str) -> bool:
    if not name:
        return False
    wanted = PurePosixPath(name.replace("\\", "/"))
    have = PurePosixPath(Path(source.path).as_posix())
    return have.parts[-len(wanted.parts):] == wanted.parts
