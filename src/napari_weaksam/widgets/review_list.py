"""The Review dock's list of proposals: one row per queue entry (state, confidence, image),
coloured by state, a click asks the dock to go to that image; and what the dock says of the
current entry (its state, round, change and tags)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QTreeWidget, QTreeWidgetItem

from ..project import LabelState, Project
from ..review import ReviewEntry, state_name
from ..review.queue import proposal_change

# Okabe-Ito colours, as in the class colours: readable with colour-vision deficiencies.
STATE_STYLE = {
    LabelState.PROPOSED: ("#E69F00", "●"),
    LabelState.ACCEPTED: ("#009E73", "✓"),
    LabelState.CORRECTED: ("#56B4E9", "✎"),
    LabelState.REJECTED: ("#D55E00", "✗"),
}


def confidence_text(confidence: float | None) -> str:
    return "—" if confidence is None else f"{confidence:.0%}"


class ReviewEntryList(QTreeWidget):
    """The queue's entries as rows; ``on_clicked(item_id)`` is called when a row is clicked."""

    def __init__(self, on_clicked: Callable[[int], None]) -> None:
        super().__init__()
        self.setHeaderLabels(["State", "Conf.", "Image"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # names differ at the end
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumHeight(90)
        self.itemClicked.connect(
            lambda row, _column: on_clicked(row.data(0, Qt.ItemDataRole.UserRole)))

    def show_entries(self, entries: Sequence[ReviewEntry], current: int | None) -> None:
        """One row per entry, the ``current`` index selected."""
        self.clear()
        rows = []
        for entry in entries:
            row = QTreeWidgetItem()
            _fill_row(row, entry)
            rows.append(row)
        self.addTopLevelItems(rows)
        for column in range(2):  # the image name takes the rest
            self.resizeColumnToContents(column)
        self.select(current)

    def update_entry(self, index: int, entry: ReviewEntry) -> None:
        """Row ``index`` shows ``entry`` (after a decision about it)."""
        row = self.topLevelItem(index)
        if row is not None:
            _fill_row(row, entry)

    def select(self, index: int | None) -> None:
        """Select and scroll to row ``index`` without telling anyone (None: leave as is)."""
        row = None if index is None else self.topLevelItem(index)
        if row is not None:
            self.blockSignals(True)
            self.setCurrentItem(row)
            self.scrollToItem(row)
            self.blockSignals(False)


def _fill_row(row: QTreeWidgetItem, entry: ReviewEntry) -> None:
    color, mark = STATE_STYLE[entry.state]
    row.setText(0, f"{mark} {state_name(entry.state)}")
    row.setForeground(0, QColor(color))
    row.setText(1, confidence_text(entry.confidence))
    row.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    row.setText(2, entry.item.name)
    row.setData(0, Qt.ItemDataRole.UserRole, entry.item.id)
    row.setToolTip(2, entry.item.name)


def state_html(project: Project, entry: ReviewEntry, index: int, count: int,
               editing: bool) -> str:
    """The entry's state, confidence and place in the list; its proposal's round, method and
    what the latest round changed in it."""
    color, mark = STATE_STYLE[entry.state]
    item = entry.item
    where = f" · slice {item.slice_index}" if item.is_slice else ""
    edit = " · <b>editing</b>" if editing else ""
    origin = f"round #{entry.round_id}" if entry.round_id is not None else "no round"
    change = proposal_change(project, item.id, entry.proposal_id)
    changed = "" if change is None else f" · {change.describe()}"
    return (f"<span style='color:{color}'>{mark} {state_name(entry.state)}</span>"
            f" · confidence {confidence_text(entry.confidence)}{where}"
            f" · image {index + 1} of {count}{edit}"
            f"<br><small>proposal of {origin} · {entry.method}{changed}</small>")


def tags_html(project: Project, entry: ReviewEntry) -> str:
    """The item's tags, and a warning when the proposal contradicts "no finding"."""
    if not project.catalog.item(entry.item.id).tagged:
        return "<span style='color:gray'>Not tagged</span>"
    tags = project.catalog.tags(entry.item.id)
    if tags:
        names = ", ".join(c.name for c in project.catalog.classes() if c.id in tags)
        return f"Tagged: <b>{names}</b>"
    mask = project.labels.proposal_mask(project.labels.proposal(entry.proposal_id))
    if mask.any():
        return ("Tagged: <b>no finding</b> · <span style='color:#D55E00'>⚠ the proposal "
                "marks pixels on an image tagged “no finding”</span>")
    return "Tagged: <b>no finding</b>"
