"""Export a project's masks as label files: one per 2D image, one per volume.

Which mask an item gets: the person's final mask when its review state is exported (accepted and
corrected by default); with ``include_proposals`` the latest proposal of an item that has no such
review; a rejected item never. A 2D image gives ``<stem><suffix>``; a volume gives one label
volume in display order (slices without a mask are zeros), and as NIfTI it carries the source
affine and voxel order, so it overlays the original scan in other software.
"""

from __future__ import annotations

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
_CLASHES_SHOWN = 5


@dataclass
class ExportReport:
    """What :func:`export_masks` wrote, and what it left out and why."""

    files: list[Path] = field(default_factory=list)
    items: int = 0
    skipped: list[str] = field(default_factory=list)
    by_state: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.by_state.items())) or "none"
        return (f"{len(self.files)} files written ({self.items} items: {states}), "
                f"{len(self.skipped)} left out")


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
    """Write the project's masks under ``dest`` as ``fmt`` (tiff, nifti or zarr).

    Nothing is written when a target exists and ``overwrite`` is false (FileExistsError).
    """
    suffix = _suffix(fmt)
    wanted = _check_states(states)
    dest = Path(dest)
    project.check_outside(dest, "the export")
    report = ExportReport()
    plans = _plan(project, dest, suffix, wanted, include_proposals, report.skipped)
    clashes = [p.target for p in plans if p.target.exists()]
    if clashes and not overwrite:
        shown = ", ".join(str(p) for p in clashes[:_CLASHES_SHOWN])
        more = f" and {len(clashes) - _CLASHES_SHOWN} more" if len(clashes) > _CLASHES_SHOWN else ""
        raise FileExistsError(f"{len(clashes)} files already exist: {shown}{more}; "
                              "choose another folder, or overwrite (--overwrite)")
    dest.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    for plan in plans:
        report.files.append(_write(project, plan))
        counts.update(plan.masks.values())
    report.items = sum(counts.values())
    report.by_state = dict(counts)
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
          skipped: list[str]) -> list[_Plan]:
    """The files to write (sources with at least one mask), in source order."""
    states = project.labels.states()
    plans = []
    for source, stem in _stems(project.catalog.sources()):
        items = project.catalog.items(source.id)
        masks: dict[int, str] = {}
        for item in items:
            state = states.get(item.id, LabelState.NONE).value
            chosen = _choose(state, wanted, proposals)
            if chosen is not None:
                masks[item.id] = chosen
            elif source.kind != "volume":
                skipped.append(f"{item.name}: {_reason(state)}")
        if masks:
            plans.append(_Plan(source, dest / f"{stem}{suffix}", masks, items))
        elif source.kind == "volume":
            skipped.append(f"{stem}: no slice of the volume has a mask to export")
    return plans


def _choose(state: str, wanted: set[str], proposals: bool) -> str | None:
    """Which mask an item in ``state`` exports: its review's, its proposal's, or none."""
    if state in wanted:
        return state
    if proposals and state not in (LabelState.NONE.value, LabelState.REJECTED.value):
        return LabelState.PROPOSED.value
    return None


def _reason(state: str) -> str:
    if state == LabelState.NONE.value:
        return "no proposal"
    if state == LabelState.PROPOSED.value:
        return "proposal not reviewed"
    if state == LabelState.REJECTED.value:
        return "rejected"
    return f"{state}, not among the exported states"


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
def _write(project: Project, plan: _Plan) -> Path:
    masks = {item.display_index: _mask(project, item.id, plan.masks[item.id])
             for item in plan.items if item.id in plan.masks}
    source = plan.source
    data = _volume(source, masks) if source.kind == "volume" else masks[0]
    is_nifti = plan.target.name.endswith(EXPORT_FORMATS["nifti"])
    nifti = _geometry(source, data.shape) if is_nifti else None
    return write_labels(plan.target, data, nifti=nifti, spacing=tuple(source.spacing))


def _mask(project: Project, item_id: int, chosen: str) -> np.ndarray:
    labels = project.labels
    if chosen == LabelState.PROPOSED.value:
        return labels.proposal_mask(labels.latest_proposal(item_id))
    return labels.final_mask(item_id)


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
