"""What kind of images a project holds, and the defaults each method takes for that kind.

The methods behave differently on the two kinds of image they were measured on: radiology slices
(MR, CT: a small lesion inside an organ, the rest of the image dark) and bright-field stained
tissue (H&E: a class that covers much of a bright patch). A method declares, per kind, the option
values that measured best there and why (:class:`KindDefault`, in :mod:`.builtin`), and the
kinds it is the method of choice for. The CLI and the Train dock start from these for the
project's kind and say so; a flag or a field the person sets overrides them. No torch here.

The kind is not the channel count: lgg_mri_dev stores three MR sequences as an RGB PNG. A
one-channel item is radiology; a colour item is stained tissue when its median brightness is at
least a third of its range (:func:`looks_stained`), judged on a few items spread over the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..project import Project

RADIOLOGY = "radiology"
STAINED = "stained"
KINDS = (RADIOLOGY, STAINED)
TITLES = {RADIOLOGY: "radiology images (MR/CT)", STAINED: "stained tissue (H&E)"}
#: Light passes through a bright-field slide: its median brightness is high (EBHI-Seg's patches:
#: 0.39–0.74 of full scale); a radiology slice is mostly outside the body (lgg_mri_dev's RGB
#: slices: 0.00–0.24). A third of the range lies between the two.
BRIGHT_FIELD = 1 / 3
SAMPLED_ITEMS = 8    # colour items read to judge a project (spread over it)
VIEW_SIDE = 128      # pixels per side judged (a strided view)


@dataclass(frozen=True)
class KindDefault:
    """An option's value for one kind of image, and the measurement that chose it."""

    value: Any
    why: str


@dataclass(frozen=True)
class ProjectKind:
    """The kind of most of a project's items (a tie counts as radiology), with the counts."""

    kind: str
    radiology: int
    stained: int

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def describe(self) -> str:
        """"radiology images (MR/CT), 779 items", or for a mixed project the counts and which
        kind the defaults follow."""
        if self.radiology and self.stained:
            return (f"mixed: {self.radiology} radiology and {self.stained} stained-tissue items; "
                    f"the defaults of {self.title}, which most are")
        return f"{self.title}, {self.radiology + self.stained} items"

    def short(self) -> str:
        """"radiology images (MR/CT)", or "mostly radiology images (MR/CT), 25 of 33"."""
        if self.radiology and self.stained:
            most = max(self.radiology, self.stained)
            return f"mostly {self.title}, {most} of {self.radiology + self.stained}"
        return self.title


def looks_stained(image: np.ndarray) -> bool:
    """Whether ``image`` (H, W) or (H, W, C) is bright-field stained tissue: colour, and a median
    brightness of at least :data:`BRIGHT_FIELD` of its range."""
    if image.ndim != 3 or image.shape[-1] < 3:
        return False
    step = max(1, max(image.shape[:2]) // VIEW_SIDE)
    view = np.asarray(image[::step, ::step, :3], dtype=np.float32)
    if np.issubdtype(image.dtype, np.integer):
        full = float(np.iinfo(image.dtype).max)
    else:
        full = max(1.0, float(np.nanmax(view)) if view.size else 1.0)
    return float(np.nanmedian(view.mean(axis=-1))) / full >= BRIGHT_FIELD


def project_kind(project: Project) -> ProjectKind | None:
    """The kind of the project's items; None for a project without items. One-channel items
    are radiology; the colour ones are all judged by :data:`SAMPLED_ITEMS` of them (an item that
    cannot be read is left out of the vote)."""
    counts = project.catalog.count_items_by_channels()
    colour = sum(items for channels, items in counts.items() if channels >= 3)
    total = sum(counts.values())
    if not total:
        return None
    stained = colour if colour and _colour_items_look_stained(project) else 0
    kind = STAINED if stained > total - stained else RADIOLOGY
    return ProjectKind(kind, total - stained, stained)


def _colour_items_look_stained(project: Project) -> bool:
    from ..project import ProjectError

    colour = project.catalog.item_ids(min_channels=3)
    picks = [colour[i] for i in np.linspace(0, len(colour) - 1, min(SAMPLED_ITEMS, len(colour)),
                                            dtype=int)]
    votes = []
    for item_id in picks:
        try:
            votes.append(looks_stained(project.item_image(project.catalog.item(item_id))))
        except (OSError, ValueError, ProjectError):
            continue
    return sum(votes) * 2 > len(votes)
