"""Export a project's masks as label files: one per 2D image, one per volume, and a manifest.

Which mask an item gets: the person's final mask when its review state is exported (accepted and
corrected by default); with ``include_proposals`` the latest proposal of an item that has no such
review; a rejected item never. A 2D image gives ``<stem><suffix>``, a slide's tile
``<tile item name><suffix>`` (the whole slide's labels: :mod:`.slides.export`); a volume gives
one label volume in display order (slices without a mask are zeros), and as NIfTI it carries the
source affine and voxel order, so it overlays the original scan in other software.

Beside the label files, ``export.csv`` lists every item of every written file, one row each:

* ``file``: the label file's name in the export folder;
* ``item``: the item's name in the project;
* ``slice``: the index along the first axis of an exported TIFF or zarr volume (display order),
  empty for a 2D image; ``source_slice``: the slice's index in the source file (and in a NIfTI
  export, which keeps the source voxel order);
* ``state``: ``accepted`` or ``corrected`` (a person's mask), ``proposal`` (an unreviewed
  proposal, only with ``include_proposals``) or ``absent`` (nothing written: zeros);
* ``round``: the id of the training round whose proposal the mask comes from (empty for a mask
  drawn by hand or a proposal made outside a round, and for ``absent``).

Items left out of the export (no file) are not in the manifest: :class:`ExportReport` names them.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import NiftiGeometry, write_labels
from .io.readers import split_suffix
from .io.writers import label_dtype
from .project import Item, LabelState, Project, Source

EXPORT_FORMATS = {"tiff": ".tif", "nifti": ".nii.gz", "zarr": ".zarr"}
EXPORTABLE_STATES = (LabelState.ACCEPTED.value, LabelState.CORRECTED.value)
MANIFEST = "export.csv"
MANIFEST_COLUMNS = ("file", "item", "slice", "source_slice", "state", "round")
_CLASHES_SHOWN = 5
_VOLUME_LEFT_OUT = "volume{s} with no slice to export"
_LEFT_OUT_ORDER = ("not reviewed", "rejected", "without a proposal")  # then the rest, volumes last


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class ExistingFiles(FileExistsError):
    """The export would replace files (``clashes``) in ``folder``; nothing was written."""

    def __init__(self, clashes: list[Path], folder: Path) -> None:
        self.clashes, self.folder = clashes, folder
        super().__init__(self.explain("choose another folder, or overwrite them"))

    def headline(self, name_chars: int = 20) -> str:
        """A short line: how many files are already in the folder (its name, cut in the middle
        beyond ``name_chars``)."""
        name = self.folder.name or str(self.folder)
        if len(name) > name_chars:
            half = (name_chars - 1) // 2
            name = f"{name[:half]}…{name[len(name) - half:]}"
        return f"{_plural(len(self.clashes), 'file')} already in {name}"

    def explain(self, remedy: str) -> str:
        """The full refusal: count, folder, ``remedy``, then the first file names."""
        shown = ", ".join(p.name for p in self.clashes[:_CLASHES_SHOWN])
        more = len(self.clashes) - _CLASHES_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        n = len(self.clashes)
        verb = "exists" if n == 1 else "exist"
        return f"{_plural(n, 'file')} already {verb} in {self.folder}; {remedy}. Existing: {shown}"


@dataclass
class ExportReport:
    """What :func:`export_masks` wrote, and what it left out and why.

    ``files`` are the label files (the manifest apart); ``left_out`` counts the entries of
    ``skipped`` by reason; ``proposals_left`` is how many of them ``include_proposals`` would add.
    """

    files: list[Path] = field(default_factory=list)
    items: int = 0
    skipped: list[str] = field(default_factory=list)
    by_state: dict[str, int] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)
    proposals_left: int = 0
    manifest: Path | None = None

    def leave_out(self, name: str, reason: str, group: str, *, has_proposal: bool) -> None:
        """Record ``name`` as left out for ``reason``, counted under ``group`` in the summary."""
        self.skipped.append(f"{name}: {reason}")
        self.left_out[group] += 1
        self.proposals_left += has_proposal

    def summary(self, proposals_hint: str = "") -> str:
        """One line; ``proposals_hint`` (how to add unreviewed proposals) ends it when any of
        the left-out entries has one."""
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.by_state.items())) or "none"
        text = (f"{_plural(len(self.files), 'file')} written "
                f"({_plural(self.items, 'item')}: {states}), {len(self.skipped)} left out")
        groups = sorted(self.left_out.items(), key=lambda pair: _left_out_rank(pair[0]))
        if groups:
            text += ": " + ", ".join(f"{n} {group.format(s='' if n == 1 else 's')}"
                                     for group, n in groups)
        if proposals_hint and self.proposals_left:
            text += f" — {proposals_hint}"
        return text


def _left_out_rank(group: str) -> tuple[int, str]:
    """Where ``group`` comes in the summary: :data:`_LEFT_OUT_ORDER`, the others, volumes."""
    if group == _VOLUME_LEFT_OUT:
        return len(_LEFT_OUT_ORDER) + 1, group
    known = group in _LEFT_OUT_ORDER
    return (_LEFT_OUT_ORDER.index(group) if known else len(_LEFT_OUT_ORDER)), group


@dataclass
class _Plan:
    """One file to write: the source, its target and which mask each of its items gets."""

    source: Source
    target: Path
    masks: dict[int, str]  # item id -> "accepted" / "corrected" (final mask) or "proposed"
    items: list[Item]


def export_masks(project: Project, dest: str | Path, *, fmt: str = "tiff",
                 include_proposals: bool = False,
                 states: Iterable[str | LabelState] = EXPORTABLE_STATES,
                 overwrite: bool = False) -> ExportReport:
    """Write the project's masks under ``dest`` as ``fmt`` (tiff, nifti or zarr), and
    :data:`MANIFEST`.

    Nothing is written when a target exists and ``overwrite`` is false (:class:`ExistingFiles`).
    """
    suffix = _suffix(fmt)
    wanted = _check_states(states)
    dest = Path(dest)
    project.check_outside(dest, "the export")
    report = ExportReport()
    plans = _plan(project, dest, suffix, wanted, include_proposals, report)
    targets = [p.target for p in plans] + ([dest / MANIFEST] if plans else [])
    clashes = [t for t in targets if t.exists()]
    if clashes and not overwrite:
        raise ExistingFiles(clashes, dest)
    dest.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    rows: list[dict[str, object]] = []
    reviewed = project.labels.reviewed_proposals()
    for plan in plans:
        report.files.append(_write(project, plan, reviewed, rows))
        counts.update(plan.masks.values())
    report.items = sum(counts.values())
    report.by_state = dict(counts)
    if plans:
        report.manifest = _write_manifest(dest / MANIFEST, rows)
    return report


def _suffix(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[fmt]


def _check_states(states: Iterable[str | LabelState]) -> set[str]:
    wanted = {LabelState(s).value for s in states}
    if not wanted <= set(EXPORTABLE_STATES):
        raise ValueError(f"only {' and '.join(EXPORTABLE_STATES)} reviews can be exported, "
                         f"not {', '.join(sorted(wanted - set(EXPORTABLE_STATES)))}")
    return wanted


# -- planning ----------------------------------------------------------------------------------
def _plan(project: Project, dest: Path, suffix: str, wanted: set[str], proposals: bool,
          report: ExportReport) -> list[_Plan]:
    """The files to write (sources with at least one mask), in source order; the rest is left
    out in ``report``."""
    states = project.labels.states()
    plans = []
    for source, stem in _stems(project.catalog.sources()):
        items = project.catalog.items(source.id)
        item_states = [states.get(item.id, LabelState.NONE).value for item in items]
        masks = {item.id: chosen for item, state in zip(items, item_states, strict=True)
                 if (chosen := _choose(state, wanted, proposals)) is not None}
        if source.is_slide:   # one file per tile, named as the tile item
            plans += [_Plan(source, dest / f"{item.name}{suffix}", {item.id: masks[item.id]},
                            [item]) for item in items if item.id in masks]
        elif masks:
            plans.append(_Plan(source, dest / f"{stem}{suffix}", masks, items))
        elif source.kind == "volume":
            report.leave_out(stem, "no slice of the volume has a mask to export", _VOLUME_LEFT_OUT,
                             has_proposal=any(_choose(s, wanted, True) for s in item_states))
        if source.kind != "volume":
            _leave_out_image(report, items, item_states, masks, wanted)
    return plans


def _leave_out_image(report: ExportReport, items: list[Item], item_states: list[str],
                     masks: dict[int, str], wanted: set[str]) -> None:
    for item, state in zip(items, item_states, strict=True):
        if item.id not in masks:
            reason, group = _reason(state)
            report.leave_out(item.name, reason, group,
                             has_proposal=_choose(state, wanted, True) is not None)


def _choose(state: str, wanted: set[str], proposals: bool) -> str | None:
    """Which mask an item in ``state`` exports: its review's, its proposal's, or none."""
    if state in wanted:
        return state
    if proposals and state not in (LabelState.NONE.value, LabelState.REJECTED.value):
        return LabelState.PROPOSED.value
    return None


def _reason(state: str) -> tuple[str, str]:
    """Why an item in ``state`` is left out, and its group in the summary."""
    if state == LabelState.NONE.value:
        return "no proposal", "without a proposal"
    if state == LabelState.PROPOSED.value:
        return "proposal not reviewed", "not reviewed"
    if state == LabelState.REJECTED.value:
        return "rejected", "rejected"
    return f"{state}, not among the exported states", f"{state} (state not exported)"


def _stems(sources: list[Source]) -> list[tuple[Source, str]]:
    """File stems of the sources; a repeated stem gets `` (2)``, `` (3)``… in source order."""
    taken: set[str] = set()
    named = []
    for source in sources:
        base = split_suffix(source.path)[0]
        stem, n = base, 2
        while stem.lower() in taken:
            stem, n = f"{base} ({n})", n + 1
        taken.add(stem.lower())
        named.append((source, stem))
    return named


# -- writing -----------------------------------------------------------------------------------
def _write(project: Project, plan: _Plan, reviewed: dict[int, int],
           rows: list[dict[str, object]]) -> Path:
    """Write the plan's label file; add its items' manifest rows to ``rows``."""
    masks: dict[int, np.ndarray] = {}
    for item in sorted(plan.items, key=lambda i: i.display_index):
        chosen = plan.masks.get(item.id)
        round_id = None
        if chosen is not None:
            masks[item.display_index], round_id = _mask(project, item.id, chosen, reviewed)
        rows.append(_row(plan, item, chosen, round_id))
    source = plan.source
    data = _volume(source, masks) if source.kind == "volume" else masks[0]
    is_nifti = plan.target.name.endswith(EXPORT_FORMATS["nifti"])
    nifti = _geometry(source, data.shape) if is_nifti else None
    return write_labels(plan.target, data, nifti=nifti, spacing=tuple(source.spacing))


def _mask(project: Project, item_id: int, chosen: str,
          reviewed: dict[int, int]) -> tuple[np.ndarray, int | None]:
    """The item's mask to export and the round of the proposal it comes from."""
    labels = project.labels
    if chosen == LabelState.PROPOSED.value:
        proposal = labels.latest_proposal(item_id)
        return labels.proposal_mask(proposal), proposal.round_id
    proposal_id = reviewed.get(item_id)
    round_id = None if proposal_id is None else labels.proposal(proposal_id).round_id
    return labels.final_mask(item_id), round_id


def _row(plan: _Plan, item: Item, chosen: str | None, round_id: int | None) -> dict[str, object]:
    state = {None: "absent", LabelState.PROPOSED.value: "proposal"}.get(chosen, chosen)
    volume = plan.source.kind == "volume"
    return {"file": plan.target.name, "item": item.name,
            "slice": item.display_index if volume else "",
            "source_slice": item.slice_index if volume else "",
            "state": state, "round": "" if round_id is None else round_id}


def _write_manifest(path: Path, rows: list[dict[str, object]]) -> Path:
    """Write the manifest CSV atomically (a temporary file renamed onto ``path``)."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("x", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _volume(source: Source, masks: dict[int, np.ndarray]) -> np.ndarray:
    """The display-ordered label volume of ``source``: its masks, zeros elsewhere."""
    shape = tuple(source.shape[source.axes.index(a)] for a in "ZYX")
    top = max(int(m.max(initial=0)) for m in masks.values())
    volume = np.zeros(shape, label_dtype(top))
    for index, mask in masks.items():
        volume[index] = mask
    return volume


def _geometry(source: Source, display_shape: tuple[int, ...]) -> NiftiGeometry:
    """The source's NIfTI geometry, or a diagonal one from the spacing for other formats."""
    if source.geometry is not None:
        return NiftiGeometry.from_metadata(source.geometry)
    return NiftiGeometry.for_display(display_shape, tuple(source.spacing))
