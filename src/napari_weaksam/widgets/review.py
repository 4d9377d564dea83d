"""The Review dock: go through the proposals, least confident first, and decide on each.

Keys (in the dock and on the canvas, whatever plugin layer is selected — see :mod:`.keymap`):

* ``A`` accept the proposal · ``R`` reject it · ``Shift+A`` accept every empty proposal of an
  image tagged "no finding"
* ``E`` edit: the proposal (or the mask already accepted or corrected) is copied into the
  ``"your label"`` layer, which is selected in paint mode with the class's label value; paint
  (napari's painting keys work on it while editing), or press ``B`` and draw SAM boxes into it.
  ``E`` again (or *Save (E)*) stores the correction; ``Esc`` (or *Cancel (Esc)*) leaves
  without saving.
* ``N`` next · ``P`` previous · ``Ctrl+Z`` undo the last decision · ``Ctrl+Shift+Z`` redo it

Every decision is written to the project at once; the dock then goes to the next item still to
review. Undo and redo act on the item the decision was about (the dock goes back to it), and
redoing a correction brings its painted mask back. A decision about a proposal that is no longer
the item's current one (a round finished since it was shown) is refused with a one-line message,
and the current proposal is shown. Decisions, edits and moves are refused while an edit is open.

What is shown for a reviewed item is what the person decided on: the accepted or corrected mask
in "your label" and the proposal that was reviewed, whatever later rounds proposed. The current
item's tags, its proposal's round and method are shown; a proposal that contradicts a "no
finding" tag is flagged. When a round brings new proposals, the dock says how many.

The project, the current item, the image layer, the review layers and the keys are the viewer's
:func:`~napari_weaksam.widgets.session.session_for` — shared with the Tagging dock, so both
always speak of the image on the canvas.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeyEvent
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..project import LabelState, Project, ProjectError
from ..review import ReviewEntry, ReviewQueue, latest_proposals, review_rounds, state_name
from ..review.history import DecisionHistory, after_text
from ..review.round_change import RoundChange, round_change
from .box_tool import BoxToolWidget
from .export_box import ExportBox
from .item_view import ItemView
from .keymap import navigation_keys
from .legend import LayerLegend
from .qt_helpers import ElidedLabel, make_button
from .review_layers import KINDS, ReviewLayers
from .review_list import ReviewEntryList, state_html, tags_html
from .session import SessionDock, follow, session_for

if TYPE_CHECKING:
    import napari

ORDER_CHOICES = (("uncertainty", "Least confident first"), ("position", "By position"))
FILTER_CHOICES = (("all", "All"), ("to review", "To review"), ("accepted", "Accepted"),
                  ("corrected", "Corrected"), ("rejected", "Rejected"))
NO_PROJECT = "Open a project in the Tag tab to review its proposals."
NO_PROPOSALS = "No proposals yet — run a method from the Train tab."
_KEYS = {Qt.Key.Key_A: "accept", Qt.Key.Key_R: "reject", Qt.Key.Key_E: "edit",
         Qt.Key.Key_N: "next", Qt.Key.Key_P: "previous", Qt.Key.Key_Escape: "cancel_edit"}
_BIG = "font-size: 13px; font-weight: bold; padding: 6px;"


class ReviewWidget(SessionDock, QWidget):
    """Dock widget that reviews the proposals of the shared project."""

    def __init__(self, napari_viewer: napari.Viewer, project: Project | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.project: Project | None = None
        self.queue: ReviewQueue | None = None
        self.history: DecisionHistory | None = None
        self.session = session_for(napari_viewer)
        self.editing = False
        self._following_dims = False
        self._has_proposals = False
        self._reload_pending = False
        self._shown_ids: set[int] = set()
        self.last_change: RoundChange | None = None   # what the last new round changed
        self._build()
        self._bind_keys()
        napari_viewer.dims.events.current_step.connect(self._on_dims_step)
        self._join_session(napari_viewer, project)
        follow(self, self.session.labels_changed, self._on_labels_changed)
        follow(self, self.session.item_requested, self._on_item_requested)
        follow(self, self.session.item_shown, self._on_item_shown)
        self._refresh()

    @property
    def view(self) -> ItemView:
        return self.session.view

    @property
    def editing(self) -> bool:
        """An edit is open (the session knows: no dock moves the canvas meanwhile)."""
        return self.session.editor is self

    @editing.setter
    def editing(self, value: bool) -> None:
        if value:
            self.session.editor = self
        elif self.session.editor is self:
            self.session.editor = None

    @property
    def layers(self) -> ReviewLayers:
        return self.session.layers

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
        self.counts_label.setWordWrap(True)
        layout.addWidget(self.counts_label)
        self.empty_label = QLabel(NO_PROJECT)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("color: gray; font-size: 14px; padding: 24px;")
        layout.addWidget(self.empty_label)
        self.entry_list = ReviewEntryList(self._on_entry_clicked)
        layout.addWidget(self.entry_list, stretch=1)
        layout.addWidget(self._current_box())
        layout.addLayout(self._layer_boxes())
        self.legend = LayerLegend()
        layout.addWidget(self.legend)
        self.export_box = ExportBox(lambda: self.project, self.status_label.setText)
        layout.addWidget(self.export_box)

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
            combo.setSizeAdjustPolicy(  # long round names must not widen the dock
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            combo.currentIndexChanged.connect(lambda _i: self.reload())
        form.addRow("Order", self.order_combo)
        form.addRow("Show", self.filter_combo)
        form.addRow("Proposals", self.round_combo)
        return form

    def _current_box(self) -> QGroupBox:
        box = QGroupBox("Current image")
        layout = QVBoxLayout(box)
        self.item_label = ElidedLabel("—")
        self.item_label.setStyleSheet("font-size: 14px; font-weight: bold;")
        self.state_label = QLabel("")
        self.state_label.setStyleSheet("font-size: 13px;")
        self.state_label.setWordWrap(True)
        self.tags_label = QLabel("")
        self.tags_label.setWordWrap(True)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        for widget in (self.item_label, self.state_label, self.tags_label):
            layout.addWidget(widget)
        grid = QGridLayout()
        self.accept_button = make_button("A  Accept", "The proposal is right (A)", self.accept)
        self.reject_button = make_button("R  Reject", "The proposal is wrong (R)", self.reject)
        self.edit_button = make_button("E  Edit", "Correct the proposal in “your label” (E)",
                                       self.edit)
        self.save_button = make_button("Save (E)", "Store “your label” as the "
                                       "correction (E)", self.save_edit)
        self.cancel_button = make_button("Cancel (Esc)", "Leave without saving (Esc)",
                                         self.cancel_edit)
        self.boxes_button = make_button("Boxes (B)", "While editing: draw boxes, SAM "
                                        "segments them into “your label” (B)", self.draw_boxes)
        self.prev_button = make_button("P  Prev", "Previous image (P)", self.previous)
        self.next_button = make_button("N  Next", "Next image (N)", self.next)
        self.undo_button = make_button("Undo", "Undo the last decision, on its image (Ctrl+Z)",
                                       self.undo)
        self.redo_button = make_button("Redo", "Make the undone decision again (Ctrl+Shift+Z)",
                                       self.redo)
        self.bulk_button = make_button("Accept empty no-finding proposals", "Accept at once "
                                       "every empty proposal of an image tagged “no finding” "
                                       "(Shift+A)", self.accept_empty_negatives)
        for button in (self.accept_button, self.reject_button, self.edit_button):
            button.setStyleSheet(_BIG)
            button.setMinimumHeight(34)
        grid.addWidget(self.accept_button, 0, 0)
        grid.addWidget(self.reject_button, 0, 1)
        grid.addWidget(self.edit_button, 0, 2)
        grid.addWidget(self.save_button, 1, 0)
        grid.addWidget(self.boxes_button, 1, 1)
        grid.addWidget(self.cancel_button, 1, 2)
        grid.addWidget(self.prev_button, 2, 0)
        grid.addWidget(self.next_button, 2, 1)
        row = QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        grid.addLayout(row, 2, 2)
        grid.addWidget(self.bulk_button, 3, 0, 1, 3)
        layout.addLayout(grid)
        self.box_tool = BoxToolWidget(self.viewer, embedding_source=self._cached_embedding,
                                      embedded=True)
        self.box_tool.setVisible(False)
        layout.addWidget(self.box_tool)
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
            box.toggled.connect(lambda checked, k=kind: self._toggle_layer(k, checked))
            row.addWidget(box)
            self.layer_boxes[kind] = box
        row.addStretch(1)
        self.slide_button = make_button(
            "Slide", "Stitch the slide's tile labels and show the whole slide under the tile",
            self.show_slide)
        row.addWidget(self.slide_button)
        return row

    def _toggle_layer(self, kind: str, visible: bool) -> None:
        self.layers.set_visible(kind, visible)
        self.legend.show_for(self.layers)

    def _bind_keys(self) -> None:
        keys = {
            "a": (self.accept, "accept the proposal"),
            "r": (self.reject, "reject the proposal"),
            "e": (self.edit, "edit the proposal; while editing, save the correction"),
            "Escape": (self.cancel_edit, "cancel the edit"),
            "b": (self.draw_boxes, "while editing: draw SAM boxes into “your label”"),
            "Shift-a": (self.accept_empty_negatives,
                        "accept every empty proposal of a “no finding” image"),
            "Control-z": (self.undo, "undo the last decision (on its image)"),
            "Control-Shift-z": (self.redo, "redo the undone decision"),
        }
        keys.update(navigation_keys(self.next, self.previous))
        self.session.keys.register(self, keys)

    # -- project -------------------------------------------------------------------------------
    def _adopt(self, project: Project) -> None:
        if self.project is project:
            return
        self._forget_project()
        self.project = project
        self.queue = ReviewQueue(project)
        self.history = DecisionHistory(project)
        self.reload()

    def _forget_project(self) -> None:
        if self.editing:
            self._stop_painting()
        self.editing = self._reload_pending = False
        self.project, self.queue, self.history = None, None, None
        self._shown_ids = set()
        self._rebuild_list()
        self._refresh()

    def _on_labels_changed(self) -> None:
        """New proposals (a round finished, or one was restored): reload, and say so."""
        before = set(self._shown_ids)
        self.reload()
        if self.queue is None or not before:
            return
        arrived = self._shown_ids - before
        if arrived:
            rounds = sorted({e.round_id for e in self.queue.entries
                             if e.proposal_id in arrived and e.round_id is not None})
            where = f" from round #{rounds[-1]}" if rounds else ""
            kept = sum(e.state is not LabelState.PROPOSED for e in self.queue.entries)
            text = (f"{len(arrived)} new proposals{where}; "
                    f"{kept} reviewed images keep your decisions.")
            if rounds:
                self.last_change = round_change(self.project, rounds[-1])
                text += f" {self.last_change.describe().capitalize()}."
            self._say(text)
            show_info(text)

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
        self._shown_ids = {e.proposal_id for e in self.queue.entries}
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

    def _on_item_shown(self, item, origin: object) -> None:
        """Another dock put ``item`` on the canvas: follow it (its layers, or none)."""
        if origin is self or self.queue is None or self.editing:
            return
        if self.queue.go_to(item.id):
            self._show_layers(self.queue.current)
        else:
            self.layers.clear()
        self._select_row()
        self._refresh()

    # -- decisions -----------------------------------------------------------------------------
    def accept(self) -> None:
        self._decide("accept")

    def reject(self) -> None:
        self._decide("reject")

    def undo(self) -> None:
        """Undo the newest decision of this session, on the image it was about."""
        self._step_history(undo=True)

    def redo(self) -> None:
        self._step_history(undo=False)

    def _step_history(self, undo: bool) -> None:
        if self.history is None or self._editing_refused():
            return
        try:
            decision = self.history.undo() if undo else self.history.redo()
        except ProjectError as error:
            show_error(f"Not saved: {error}")
            self._say(f"Not saved: {error}")
            return
        if decision is None:
            self._say("Nothing to undo." if undo else "Nothing to redo.")
            self._refresh()
            return
        self.session.reviews_changed.emit()
        self.queue.reload(self.queue.order, self.queue.state_filter, self.queue.round_id)
        self.queue.go_to(decision.item_id)
        self._rebuild_list()
        self._show_current()
        self._say(after_text(decision, undone=undo))

    def accept_empty_negatives(self) -> None:
        """Accept every empty proposal of an image tagged "no finding" (those still to review)."""
        if self.queue is None or self._editing_refused() or self.project.read_only:
            return
        entries = self.queue.empty_negatives()
        try:
            for entry in entries:
                before = self.history.before(entry.item.id)
                self.queue.accept_many([entry])
                self.history.record(entry.item.id, entry.item.name, before)
        except (ProjectError, ValueError) as error:
            show_error(f"Not saved: {error}")
        self._rebuild_list()
        self.session.reviews_changed.emit()
        self._say(f"Accepted {len(entries)} empty proposals of images tagged “no finding”."
                  if entries else "No empty proposal of a “no finding” image is waiting.")
        self._show_current()

    def _entry(self) -> ReviewEntry | None:
        """The queue's current entry when it is the image on the canvas (else None: the canvas
        shows an image another dock moved to, which has no proposal in this list)."""
        entry = self.queue.current if self.queue is not None else None
        shown = self.session.current_item
        if entry is None or (shown is not None and shown.id != entry.item.id):
            return None
        return entry

    def _decide(self, action: str, *args) -> bool:
        if self._entry() is None:
            if self.queue is not None:
                self._say("The image on the canvas has no proposal in this list.")
            return False
        if self.editing and action != "correct":
            self._say("Save (E) or cancel (Esc) the edit first.")
            return False
        index, item = self.queue.index, self.queue.current.item
        before = self.history.before(item.id)
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
        self.history.record(item.id, item.name, before)
        self._update_row(index)
        self.session.reviews_changed.emit()
        done = self.queue.current is entry
        self._say(f"{entry.item.name}: {state_name(entry.state)} (Ctrl+Z undoes)."
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

    def show_slide(self) -> None:
        """Stitch the current tile's slide (when the project is writable) and show it whole."""
        from ..slides.stitching import stitch_slide
        from .slide_view import show_slide

        entry = self._entry()
        if entry is None or entry.item.tile is None:
            return
        source = self.project.catalog.source(entry.item.source_id)
        if not self.project.read_only:
            report = stitch_slide(self.project, source)
            self._say(f"Stitched {report.reviewed} reviewed and {report.proposed} proposed tiles")
        show_slide(self.viewer, self.project, source)
        self.view.to_bottom()

    # -- editing -------------------------------------------------------------------------------
    def edit(self) -> None:
        """Start correcting the current proposal; while editing, save it."""
        if self.editing:
            self.save_edit()
            return
        entry = self._entry()
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
        self.session.keys.set_painting(layer)
        self.editing = True
        self.export_box.setVisible(False)   # room for the edit row and the boxes
        self._say("Editing “your label”: paint, or press B and draw SAM boxes. "
                  "E saves, Esc cancels.")
        self._refresh()

    def draw_boxes(self) -> None:
        """While editing: SAM boxes drawn on the canvas are painted into "your label"."""
        if not self.editing:
            self._say("Press E to edit first; boxes are drawn into “your label”.")
            return
        tool = self.box_tool
        tool.setVisible(True)
        tool.target(self.view.layer, self.layers.your_label)
        tool.start()

    def _cached_embedding(self, backbone, plane: np.ndarray):
        """The project's cached embedding of ``plane`` for ``backbone`` (in the precision the
        project's embeddings are cached in), if it has one."""
        if self.project is None:
            return None
        from ..backbones.precision import cached_precision

        precision = cached_precision(backbone, self.project)
        if precision is not None:
            backbone.set_precision(precision)
        return self.project.embedding_cache(backbone).get(plane)

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
        self.session.keys.set_painting(None)
        self.export_box.setVisible(True)
        self.box_tool.finish()
        self.box_tool.setVisible(False)
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

    def _on_entry_clicked(self, item_id: int) -> None:
        if self.editing:
            self._editing_refused()
            self._select_row()
        else:
            self.go_to(item_id)

    def _on_dims_step(self, _event=None) -> None:
        """Scrolling through a volume moves to that slice's entry when it has one."""
        if self.session.current_item is None:   # nothing shown (a project is closing)
            return
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
            self.session.show_item(entry.item, self)
            self._show_layers(entry)
        except Exception as error:  # noqa: BLE001 - a bad file must not break the dock
            show_error(f"{entry.item.name}: cannot show this image: {error}")
        finally:
            self._following_dims = False
        self._select_row()
        self._refresh()

    def _show_layers(self, entry: ReviewEntry) -> None:
        """The entry's maps and masks over the image (which stays at the bottom)."""
        self._following_dims = True
        try:
            self.layers.show(self.project, entry, self.queue.round_id)
            self.view.to_bottom()
            self.view.show(self.project, entry.item)  # the plane again, after layer changes
            if self.view.layer is not None:
                self.viewer.layers.selection.active = self.view.layer
        finally:
            self._following_dims = False
        for kind, box in self.layer_boxes.items():
            box.blockSignals(True)
            box.setChecked(self.layers.visible[kind])
            box.blockSignals(False)
        self.legend.show_for(self.layers)

    def _rebuild_list(self) -> None:
        if self.queue is None:
            self.entry_list.clear()
            return
        self.entry_list.show_entries(self.queue.entries, self.queue.index)

    def _update_row(self, index: int) -> None:
        if self.queue is not None and index < len(self.queue.entries):
            self.entry_list.update_entry(index, self.queue.entries[index])

    def _select_row(self) -> None:
        if self.queue is not None and self.queue.current is not None:
            self.entry_list.select(self.queue.index)

    def _say(self, text: str) -> None:
        self.status_label.setText(text)

    def _refresh(self) -> None:
        has_project = self.project is not None and self.queue is not None
        entry = self._entry() if has_project else None
        writable = has_project and not self.project.read_only
        can_decide = entry is not None and writable and not self.editing
        for button in (self.accept_button, self.reject_button):
            button.setEnabled(can_decide)
        history = self.history if writable and not self.editing else None
        self._offer(self.undo_button, "Undo", history.next_undo() if history else None)
        self._offer(self.redo_button, "Redo", history.next_redo() if history else None)
        self.bulk_button.setEnabled(has_project and writable and not self.editing)
        self.edit_button.setEnabled(entry is not None and writable and not self.editing)
        self.save_button.setEnabled(self.editing)
        self.cancel_button.setEnabled(self.editing)
        self.boxes_button.setEnabled(self.editing)
        listed = has_project and bool(self.queue.entries)
        for button in (self.prev_button, self.next_button):
            button.setEnabled(listed and not self.editing)
        for combo in (self.order_combo, self.filter_combo, self.round_combo):
            combo.setEnabled(has_project and not self.editing)
        self.slide_button.setVisible(entry is not None and entry.item.tile is not None)
        self._refresh_texts(entry)

    def _refresh_texts(self, entry: ReviewEntry | None) -> None:
        if self.project is None or self.queue is None:
            self.project_label.setText(NO_PROJECT)
            self.counts_label.setText("")
            self._show_empty(NO_PROJECT)
            self.item_label.setText("—")
            self.state_label.setText("")
            self.tags_label.setText("")
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
            current = self.session.current_item
            self.item_label.setText(current.name if current is not None else "—")
            self.state_label.setText("This image has no proposal yet." if current else "")
            self.tags_label.setText("")
            return
        self.item_label.setText(entry.item.name)
        self.state_label.setText(state_html(self.project, entry, self.queue.index,
                                            len(self.queue.entries), self.editing))
        self.tags_label.setText(tags_html(self.project, entry))

    @staticmethod
    def _offer(button, verb: str, decision) -> None:
        button.setEnabled(decision is not None)
        button.setToolTip(f"{verb}: {decision.describe()}" if decision is not None else
                          f"Nothing to {verb.lower()} in this session")

    def _show_empty(self, text: str | None) -> None:
        self.empty_label.setVisible(text is not None)
        self.entry_list.setVisible(text is None)
        if text is not None:
            self.empty_label.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.layers.clear()
        self.session.keys.forget(self)
        super().closeEvent(event)

