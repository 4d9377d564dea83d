"""The Review dock: go through the proposals, least confident first, and decide on each.

Keys (in the dock and on the canvas):

* ``A`` accept the proposal · ``R`` reject it
* ``E`` edit: the proposal is copied into the ``"your label"`` layer, which is selected in paint
  mode with the class's label value; paint, or draw boxes with the SAM box tool (choose
  ``your label`` as its Labels layer). ``E`` again (or *Save correction*) stores the correction;
  ``Esc`` (or *Cancel edit*) leaves without saving.
* ``N`` next · ``P`` previous

Every decision is written to the project at once; the dock then goes to the next item still to
review. A decision about a proposal that is no longer the item's current one (a round finished
since it was shown) is refused with a one-line message, and the current proposal is shown.
Decisions, edits and moves are refused while an edit is open (save or cancel it first).

Canvas keys are napari viewer key bindings (``viewer.bind_key(..., overwrite=True)``): the
plugin's docks that bind the same keys (the Tagging dock binds ``N`` / ``P`` too) overwrite each
other, so **the most recently opened dock owns the canvas keys**; each dock's own keys always
work while it has the focus. napari gives the *selected layer's* keys priority over the viewer's:
the review keys are also bound on the ``"proposal"`` and ``"your label"`` layers (there ``E``
saves an edit instead of napari's eraser — use ``1`` for the eraser — and ``P`` stays napari's
paint mode); while the SAM box tool's ``SAM boxes`` layer is selected, its own keys apply
(``A`` accepts the boxes there), so use the dock's buttons.

The project comes from the viewer's :func:`~napari_weaksam.widgets.session.session_for`, shared
with the other docks (open it in the Tagging dock). When another dock reports new labels
(``labels_changed``, e.g. a finished training round) the queue is reloaded on the same item.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QKeyEvent
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..project import LabelState, Project, ProjectError
from ..review import ReviewEntry, ReviewQueue, latest_proposals, review_rounds, state_name
from .export_box import ExportBox
from .item_view import ItemView
from .qt_helpers import make_button
from .review_layers import KINDS, PROPOSAL, YOUR_LABEL, ReviewLayers
from .session import SessionDock, follow

if TYPE_CHECKING:
    import napari

ORDER_CHOICES = (("uncertainty", "Least confident first"), ("position", "By position"))
FILTER_CHOICES = (("all", "All"), ("to review", "To review"), ("accepted", "Accepted"),
                  ("corrected", "Corrected"), ("rejected", "Rejected"))
# Okabe-Ito colours, as in the class colours: readable with colour-vision deficiencies.
STATE_STYLE = {
    LabelState.PROPOSED: ("#E69F00", "●"),
    LabelState.ACCEPTED: ("#009E73", "✓"),
    LabelState.CORRECTED: ("#56B4E9", "✎"),
    LabelState.REJECTED: ("#D55E00", "✗"),
}
NO_PROJECT = "Open a project in the Tagging dock to review its proposals."
NO_PROPOSALS = "No proposals yet — run a method from the Train dock."
_HELP = ("Keys: A accept · R reject · E edit, E again saves · Esc cancel edit · N next · "
         "P previous. While editing, paint in “your label” or draw SAM boxes into it "
         "(SAM box tool → Labels: your label).")
_KEYS = {Qt.Key.Key_A: "accept", Qt.Key.Key_R: "reject", Qt.Key.Key_E: "edit",
         Qt.Key.Key_N: "next", Qt.Key.Key_P: "previous", Qt.Key.Key_Escape: "cancel_edit"}
_BIG = "font-size: 13px; font-weight: bold; padding: 6px;"


def confidence_text(confidence: float | None) -> str:
    return "—" if confidence is None else f"{confidence:.0%}"


class ReviewWidget(SessionDock, QWidget):
    """Dock widget that reviews the proposals of the shared project."""

    def __init__(self, napari_viewer: napari.Viewer, project: Project | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.project: Project | None = None
        self.queue: ReviewQueue | None = None
        self.view = ItemView(napari_viewer)
        self.layers = ReviewLayers(napari_viewer)
        self.editing = False
        self._following_dims = False
        self._has_proposals = False
        self._reload_pending = False
        self._build()
        self._bind_viewer_keys()
        napari_viewer.dims.events.current_step.connect(self._on_dims_step)
        self._join_session(napari_viewer, project)
        follow(self, self.session.labels_changed, self.reload)
        follow(self, self.session.item_requested, self._on_item_requested)
        self._refresh()

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumWidth(320)
        layout = QVBoxLayout(self)
        self.project_label = QLabel(NO_PROJECT)
        self.project_label.setWordWrap(True)
        layout.addWidget(self.project_label)
        layout.addLayout(self._choices())
        self.counts_label = QLabel("")
        self.counts_label.setStyleSheet("font-size: 13px;")
        layout.addWidget(self.counts_label)
        self.empty_label = QLabel(NO_PROJECT)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("color: gray; font-size: 14px; padding: 24px;")
        layout.addWidget(self.empty_label)
        self.entry_list = QTreeWidget()
        self.entry_list.setHeaderLabels(["State", "Conf.", "Image"])
        self.entry_list.setRootIsDecorated(False)
        self.entry_list.setUniformRowHeights(True)
        self.entry_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # names differ at the end
        self.entry_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.entry_list.setMinimumHeight(160)
        self.entry_list.itemClicked.connect(self._on_entry_clicked)
        layout.addWidget(self.entry_list, stretch=1)
        layout.addWidget(self._current_box())
        layout.addLayout(self._layer_boxes())
        self.export_box = ExportBox(lambda: self.project, self.status_label.setText)
        layout.addWidget(self.export_box)
        help_label = QLabel(_HELP)
        help_label.setWordWrap(True)
        help_label.setStyleSheet("color: gray;")
        layout.addWidget(help_label)

    def _choices(self) -> QFormLayout:
        form = QFormLayout()
        self.order_combo = QComboBox()
        for key, text in ORDER_CHOICES:
            self.order_combo.addItem(text, key)
        self.filter_combo = QComboBox()
        for key, text in FILTER_CHOICES:
            self.filter_combo.addItem(text, key)
        self.round_combo = QComboBox()
        self.round_combo.addItem("latest", None)
        self.round_combo.setToolTip("Show each item's latest proposal, or those of one round")
        for combo in (self.order_combo, self.filter_combo, self.round_combo):
            combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            combo.currentIndexChanged.connect(lambda _i: self.reload())
        form.addRow("Order", self.order_combo)
        form.addRow("Show", self.filter_combo)
        form.addRow("Proposals", self.round_combo)
        return form

    def _current_box(self) -> QGroupBox:
        box = QGroupBox("Current image")
        layout = QVBoxLayout(box)
        self.item_label = QLabel("—")
        self.item_label.setStyleSheet("font-size: 14px; font-weight: bold;")
        self.item_label.setWordWrap(True)
        self.state_label = QLabel("")
        self.state_label.setStyleSheet("font-size: 13px;")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        for widget in (self.item_label, self.state_label):
            layout.addWidget(widget)
        grid = QGridLayout()
        self.accept_button = make_button("A  Accept", "The proposal is right (A)", self.accept)
        self.reject_button = make_button("R  Reject", "The proposal is wrong (R)", self.reject)
        self.edit_button = make_button("E  Edit", "Correct the proposal in “your label” (E)",
                                       self.edit)
        self.save_button = make_button("Save correction", "Store “your label” as the "
                                       "correction (E)", self.save_edit)
        self.cancel_button = make_button("Cancel edit", "Leave without saving (Esc)",
                                         self.cancel_edit)
        self.prev_button = make_button("P  Previous", "Previous image (P)", self.previous)
        self.next_button = make_button("N  Next", "Next image (N)", self.next)
        self.undo_button = make_button("Undo decision", "The image goes back to review",
                                       self.undo)
        for button in (self.accept_button, self.reject_button, self.edit_button):
            button.setStyleSheet(_BIG)
            button.setMinimumHeight(36)
        grid.addWidget(self.accept_button, 0, 0)
        grid.addWidget(self.reject_button, 0, 1)
        grid.addWidget(self.edit_button, 0, 2)
        grid.addWidget(self.save_button, 1, 0, 1, 2)
        grid.addWidget(self.cancel_button, 1, 2)
        grid.addWidget(self.prev_button, 2, 0)
        grid.addWidget(self.next_button, 2, 1)
        grid.addWidget(self.undo_button, 2, 2)
        layout.addLayout(grid)
        layout.addWidget(self.status_label)
        return box

    def export(self, dest: Path):
        """Write the reviewed masks (and proposals when ticked) in the chosen format."""
        return self.export_box.export(dest)

    def _layer_boxes(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.layer_boxes: dict[str, QCheckBox] = {}
        for kind, text in zip(KINDS, ("CAM", "affinity", "refined", "proposal"), strict=True):
            box = QCheckBox(text)
            box.setToolTip(f"Show the {text} layer")
            box.setChecked(self.layers.visible[kind])
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.toggled.connect(lambda checked, k=kind: self.layers.set_visible(k, checked))
            row.addWidget(box)
            self.layer_boxes[kind] = box
        row.addStretch(1)
        return row

    def _bind_viewer_keys(self) -> None:
        for key, action in self._key_actions().items():
            self.viewer.bind_key(key, action, overwrite=True)

    def _key_actions(self) -> dict:
        return {"a": lambda _v: self.accept(), "r": lambda _v: self.reject(),
                "e": lambda _v: self.edit(), "n": lambda _v: self.next(),
                "p": lambda _v: self.previous(), "Escape": lambda _v: self.cancel_edit()}

    def _bind_layer_keys(self) -> None:
        """The selected layer's keys come first in napari: bind ours on our Labels layers."""
        actions = self._key_actions()
        for name, keys in ((PROPOSAL, ("a", "r", "e", "n", "p", "Escape")),
                           (YOUR_LABEL, ("a", "r", "e", "n", "Escape"))):
            layer = self.layers.layer(name)
            if layer is not None:
                for key in keys:
                    layer.bind_key(key, actions[key], overwrite=True)

    # -- project -------------------------------------------------------------------------------
    def _adopt(self, project: Project) -> None:
        if self.project is project:
            return
        self._forget_project()
        self.project = project
        self.queue = ReviewQueue(project)
        self.reload()

    def _forget_project(self) -> None:
        self.editing = self._reload_pending = False
        self.project, self.queue = None, None
        self.layers.clear()
        self.view.clear()
        self._rebuild_list()
        self._refresh()

    def reload(self) -> None:
        """Read the proposals again (choices from the combos), staying on the same item.

        While an edit is open the reload waits until it is saved or cancelled, so the edit
        always lands on the item it was started on.
        """
        if self.queue is None:
            self._refresh()
            return
        if self.editing:
            self._reload_pending = True
            return
        self._reload_pending = False
        self._rebuild_rounds()
        self.queue.reload(self.order_combo.currentData(), self.filter_combo.currentData(),
                          self.round_combo.currentData())
        self._has_proposals = bool(latest_proposals(self.project))
        self._rebuild_list()
        self._show_current()

    def _rebuild_rounds(self) -> None:
        if self.project is None:
            return
        current = self.round_combo.currentData()
        self.round_combo.blockSignals(True)
        self.round_combo.clear()
        self.round_combo.addItem("latest", None)
        for round_ in review_rounds(self.project):
            stage = round_.params.get("stage")
            text = f"round {round_.id} · {round_.method}" + (f" · {stage}" if stage else "")
            self.round_combo.addItem(text, round_.id)
        self.round_combo.setCurrentIndex(max(self.round_combo.findData(current), 0))
        self.round_combo.blockSignals(False)

    def _on_item_requested(self, item_id: int) -> None:
        if self.queue is not None and not self.editing and self.queue.go_to(item_id):
            self._show_current()

    # -- decisions -----------------------------------------------------------------------------
    def accept(self) -> None:
        self._decide("accept")

    def reject(self) -> None:
        self._decide("reject")

    def undo(self) -> None:
        self._decide("undo_review")

    def _decide(self, action: str, *args) -> bool:
        if self.queue is None or self.queue.current is None:
            return False
        if self.editing and action != "correct":
            self._say("Save (E) or cancel (Esc) the edit first.")
            return False
        index = self.queue.index
        try:
            entry = getattr(self.queue, action)(*args)
        except ProjectError as error:
            show_error(f"Not saved: {error}")
            self._refused(f"Not saved: {error}")
            return False
        except ValueError as error:
            show_warning(str(error))
            self._refused(str(error))
            return False
        self._update_row(index)
        self.session.reviews_changed.emit()
        done = action != "undo_review" and self.queue.current is entry
        self._say(f"{entry.item.name}: {state_name(entry.state)}."
                  + (" Nothing else is waiting for review in this list." if done else ""))
        self._show_current()
        return True

    def _refused(self, why: str) -> None:
        """Say why nothing was saved; when a newer proposal of the item is the reason (a round
        finished since it was shown), show that one instead, on the same item."""
        entry = self.queue.current
        latest = self.project.labels.latest_proposal(entry.item.id)
        if self.queue.round_id is None and latest is not None and \
                latest.id != entry.proposal_id:
            self.reload()
            why += " Its newest proposal is shown now."
        self._say(why)

    # -- editing -------------------------------------------------------------------------------
    def edit(self) -> None:
        """Start correcting the current proposal; while editing, save it."""
        if self.editing:
            self.save_edit()
            return
        entry = self.queue.current if self.queue is not None else None
        if entry is None or self.layers.your_label is None:
            return
        if self.project.read_only:
            self._say("The project is open read-only: corrections cannot be saved.")
            return
        if entry.state is not LabelState.CORRECTED:  # a correction is edited where it stands
            proposal = self.project.labels.proposal(entry.proposal_id)
            self.layers.set_your_label_plane(self.project.labels.proposal_mask(proposal))
        layer = self.layers.your_label
        layer.selected_label = self._label_value(entry)
        self.viewer.layers.selection.active = layer
        layer.mode = "paint"
        self.editing = True
        self._say("Editing “your label”: paint, or draw SAM boxes into it. "
                  "E saves, Esc cancels.")
        self._refresh()

    def save_edit(self) -> None:
        """Store the current plane of "your label" as the item's correction."""
        if not self.editing or self.queue is None:
            return
        mask = self.layers.your_label_plane()
        self.editing = False  # _decide refuses other actions while editing
        if not self._decide("correct", mask):
            self.editing = True
            self._refresh()
            return
        self._stop_painting()
        if self._reload_pending:
            self.reload()

    def cancel_edit(self) -> None:
        if not self.editing:
            return
        self.editing = False
        self._stop_painting()
        self._say("Edit cancelled; nothing was saved.")
        if self._reload_pending:
            self.reload()
        else:
            self._show_current()

    def _stop_painting(self) -> None:
        layer = self.layers.your_label
        if layer is not None:
            layer.mode = "pan_zoom"
        if self.view.layer is not None and self.view.layer in self.viewer.layers:
            self.viewer.layers.selection.active = self.view.layer

    def _label_value(self, entry: ReviewEntry) -> int:
        """The value to paint: the item's tagged class, else the proposal's, else the first."""
        classes = self.project.catalog.classes()
        tags = self.project.catalog.tags(entry.item.id)
        tagged = [c.label_value for c in classes if c.id in tags]
        if tagged:
            return tagged[0]
        values = np.unique(self.layers.proposal_plane())
        values = values[values > 0]
        if values.size:
            return int(values[0])
        return classes[0].label_value if classes else 1

    # -- navigation ----------------------------------------------------------------------------
    def next(self) -> None:
        self._move(+1)

    def previous(self) -> None:
        self._move(-1)

    def go_to(self, item_id: int) -> None:
        if self.queue is not None and not self._editing_refused() and self.queue.go_to(item_id):
            self._show_current()

    def _move(self, step: int) -> None:
        if self.queue is None or self._editing_refused():
            return
        moved = self.queue.next() if step > 0 else self.queue.previous()
        if not moved:
            self._say("This is the last image of the list." if step > 0 else
                      "This is the first image of the list.")
        self._show_current()

    def _editing_refused(self) -> bool:
        if self.editing:
            self._say("Save (E) or cancel (Esc) the edit first.")
        return self.editing

    def _on_entry_clicked(self, row: QTreeWidgetItem, _column: int = 0) -> None:
        item_id = row.data(0, Qt.ItemDataRole.UserRole)
        if self.editing:
            self._editing_refused()
            self._select_row()
        else:
            self.go_to(item_id)

    def _on_dims_step(self, _event=None) -> None:
        """Scrolling through a volume moves to that slice's entry when it has one."""
        if self._following_dims or self.editing or self.queue is None:
            return
        current = self.queue.current
        plane = self.view.displayed_plane()
        if current is None or plane is None or plane == current.item.display_index:
            return
        for entry in self.queue.entries:
            if entry.item.source_id == current.item.source_id and \
                    entry.item.display_index == plane:
                self.queue.go_to(entry.item.id)
                self._show_current()
                return

    # -- keys in the dock ----------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        action = _KEYS.get(event.key())
        if action is None:
            super().keyPressEvent(event)
            return
        getattr(self, action)()

    # -- display -------------------------------------------------------------------------------
    def _show_current(self) -> None:
        entry = self.queue.current if self.queue is not None else None
        if entry is None:
            self.layers.clear()
            self._refresh()
            return
        self._following_dims = True
        try:
            self.view.show(self.project, entry.item)
            self.layers.show(self.project, entry, self.queue.round_id)
            self._image_to_bottom()
            self.view.show(self.project, entry.item)  # the plane again, after layer changes
            if self.view.layer is not None:
                self.viewer.layers.selection.active = self.view.layer
            self._bind_layer_keys()
        except Exception as error:  # noqa: BLE001 - a bad file must not break the dock
            show_error(f"{entry.item.name}: cannot show this image: {error}")
        finally:
            self._following_dims = False
        for kind, box in self.layer_boxes.items():
            box.blockSignals(True)
            box.setChecked(self.layers.visible[kind])
            box.blockSignals(False)
        self._select_row()
        self._refresh()

    def _image_to_bottom(self) -> None:
        indices = [self.viewer.layers.index(layer) for layer in self.view.layers
                   if layer in self.viewer.layers]
        if indices and indices != list(range(len(indices))):
            self.viewer.layers.move_multiple(indices, 0)

    def _rebuild_list(self) -> None:
        self.entry_list.clear()
        if self.queue is None:
            return
        rows = []
        for entry in self.queue.entries:
            row = QTreeWidgetItem()
            self._fill_row(row, entry)
            rows.append(row)
        self.entry_list.addTopLevelItems(rows)
        for column in range(2):  # the image name takes the rest
            self.entry_list.resizeColumnToContents(column)
        self._select_row()

    def _fill_row(self, row: QTreeWidgetItem, entry: ReviewEntry) -> None:
        color, mark = STATE_STYLE[entry.state]
        row.setText(0, f"{mark} {state_name(entry.state)}")
        row.setForeground(0, QColor(color))
        row.setText(1, confidence_text(entry.confidence))
        row.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.setText(2, entry.item.name)
        row.setData(0, Qt.ItemDataRole.UserRole, entry.item.id)
        row.setToolTip(2, entry.item.name)

    def _update_row(self, index: int) -> None:
        row = self.entry_list.topLevelItem(index)
        if row is not None and self.queue is not None and index < len(self.queue.entries):
            self._fill_row(row, self.queue.entries[index])

    def _select_row(self) -> None:
        if self.queue is None or self.queue.current is None:
            return
        row = self.entry_list.topLevelItem(self.queue.index)
        if row is not None:
            self.entry_list.blockSignals(True)
            self.entry_list.setCurrentItem(row)
            self.entry_list.scrollToItem(row)
            self.entry_list.blockSignals(False)

    def _say(self, text: str) -> None:
        self.status_label.setText(text)

    def _refresh(self) -> None:
        has_project = self.project is not None and self.queue is not None
        entry = self.queue.current if has_project else None
        writable = has_project and not self.project.read_only
        can_decide = entry is not None and writable and not self.editing
        for button in (self.accept_button, self.reject_button, self.undo_button):
            button.setEnabled(can_decide)
        self.edit_button.setEnabled(entry is not None and writable and not self.editing)
        self.save_button.setEnabled(self.editing)
        self.cancel_button.setEnabled(self.editing)
        for button in (self.prev_button, self.next_button):
            button.setEnabled(entry is not None and not self.editing)
        for combo in (self.order_combo, self.filter_combo, self.round_combo):
            combo.setEnabled(has_project and not self.editing)
        self._refresh_texts(entry)

    def _refresh_texts(self, entry: ReviewEntry | None) -> None:
        if self.project is None or self.queue is None:
            self.project_label.setText(NO_PROJECT)
            self.counts_label.setText("")
            self._show_empty(NO_PROJECT)
            self.item_label.setText("—")
            self.state_label.setText("")
            return
        mode = " (read-only: decisions are not saved)" if self.project.read_only else ""
        self.project_label.setText(f"Project <b>{self.project.root.name}</b>{mode}")
        counts = self.queue.counts()
        self.counts_label.setText(" · ".join(f"{n} {key}" for key, n in counts.items()))
        if not self._has_proposals:
            self._show_empty(NO_PROPOSALS)
        elif not self.queue.entries:
            what = self.filter_combo.currentText().lower()
            self._show_empty(f"No proposal is “{what}” here. Choose “All” to see every one.")
        else:
            self._show_empty(None)
        if entry is None:
            self.item_label.setText("—")
            self.state_label.setText("")
            return
        item = entry.item
        where = f" · slice {item.slice_index}" if item.is_slice else ""
        self.item_label.setText(f"{item.name}")
        color, mark = STATE_STYLE[entry.state]
        editing = " · <b>editing</b>" if self.editing else ""
        self.state_label.setText(
            f"<span style='color:{color}'>{mark} {state_name(entry.state)}</span>"
            f" · confidence {confidence_text(entry.confidence)}{where}"
            f" · {self.queue.index + 1} of {len(self.queue.entries)}{editing}")

    def _show_empty(self, text: str | None) -> None:
        self.empty_label.setVisible(text is not None)
        self.entry_list.setVisible(text is None)
        if text is not None:
            self.empty_label.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.layers.clear()
        super().closeEvent(event)

