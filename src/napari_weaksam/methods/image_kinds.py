"""What kind of images a project holds, and the defaults each method takes for that kind.

The methods behave differently on the two kinds of image they were measured on: grey MR/CT
slices (a small lesion inside an organ that fills the image) and colour H&E patches (tissue whose
class covers much of a positive patch). A method declares, per kind, the option values that
measured best there and why (:class:`KindDefault`, in :mod:`.builtin`), and the kinds it is the
method of choice for. The CLI and the Train dock start from these for the project's kind and say
so; a flag or a field the person sets overrides them. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..project import Project

GREY = "grey"
COLOUR = "colour"
KINDS = (GREY, COLOUR)
TITLES = {GREY: "grey images (MR/CT)", COLOUR: "colour images (H&E)"}


@dataclass(frozen=True)
class KindDefault:
    """An option's value for one kind of image, and the measurement that chose it."""

    value: Any
    why: str


@dataclass(frozen=True)
class ProjectKind:
    """The kind of most of a project's items (a tie counts as grey), with the counts."""

    kind: str
    grey: int
    colour: int

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def describe(self) -> str:
        """"grey images (MR/CT), 779 items", or for a mixed project the counts and which kind
        the defaults follow."""
        if self.grey and self.colour:
            return (f"mixed: {self.grey} grey and {self.colour} colour items; the defaults of "
                    f"{self.title}, which most are")
        return f"{self.title}, {self.grey + self.colour} items"

    def short(self) -> str:
        """"grey images (MR/CT)", or "mostly grey images (MR/CT), 25 of 33"."""
        if self.grey and self.colour:
            most = max(self.grey, self.colour)
            return f"mostly {self.title}, {most} of {self.grey + self.colour}"
        return self.title


def kind_of_channels(channels: int) -> str:
    """Grey for one or two channels, colour for RGB(A)."""
    return COLOUR if channels >= 3 else GREY


def project_kind(project: Project) -> ProjectKind | None:
    """The kind of the project's items; None for a project without items."""
    counts = {GREY: 0, COLOUR: 0}
    for channels, items in project.catalog.count_items_by_channels().items():
        counts[kind_of_channels(channels)] += items
    if not any(counts.values()):
        return None
    kind = COLOUR if counts[COLOUR] > counts[GREY] else GREY
    return ProjectKind(kind, counts[GREY], counts[COLOUR])
