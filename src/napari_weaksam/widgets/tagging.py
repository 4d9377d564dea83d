"""The Tagging dock: classes, image-level tags per image or slice, keyboard first.

Keys (in the dock and on the canvas, whatever plugin layer is selected): 1–9 toggle a class,
0 = no finding, N / → next, P / ← previous, U = next untagged. Tags always apply to the image on
the canvas: the docks share one current item (see :mod:`.session`). Every tag is written to the
project at once.

The Window choice offers CT windows only for CT sources (their values are Hounsfield units); MR
and other grey images get automatic contrast, and colour images (H&E) have no window.

While a job runs on the project (a method run in the Train dock, an import here), New… and
Open… are disabled: the project cannot be closed or replaced under it (see ``session.busy``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeyEvent
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from ..io import WINDOW_PRESETS
from ..project import ImageClass, Item, Project, ProjectError, ProjectLockedError
from ..project.importer import iter_import
from ..project.navigator import FILTERS, TagNavigator
from ..project.tags_csv import export_tags, import_tags
from .item_view import ItemView
from .keymap import navigation_keys
from .qt_helpers import ElidedLabel, allow, color_swatch, make_button
from .session import SessionDock, follow, session_for

if TYPE_CHECKING:
    import napari

_NAV_KEYS = {
    Qt.Key.Key_N: "next", Qt.Key.Key_Right: "next", Qt.Key.Key_P: "previous",
    Qt.Key.Key_Left: "previous", Qt.Key.Key_U: "next_untagged",
}


class TaggingWidget(SessionDock, QWidget):
    """Dock widget that tags the items of a project."""

    def __init__(self, napari_viewer: napari.Viewer, project: Project | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.project: Project | None = None
        self.nav = TagNavigator()
        self.session = session_for(napari_viewer)
        self._following_dims = False
        self._build()
        self._bind_keys()
        napari_viewer.dims.events.current_step.connect(self._on_dims_step)
        self._join_session(napari_viewer, project)
        follow(self, self.session.busy_changed, self._refresh_project_buttons)
        follow(self, self.session.item_shown, self._on_item_shown)
        follow(self, self.session.labels_changed, self._on_labels_changed)
        self._refresh()

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumWidth(300)
        layout = QVBoxLayout(self)
        layout.addWidget(self._project_box())
        layout.addWidget(self._classes_box())
        layout.addWidget(self._item_box())
        layout.addWidget(self._slide_box())
        layout.addStretch(1)

    def _project_box(self) -> QGroupBox:
        box = QGroupBox("Project")
        layout = QVBoxLayout(box)
        self.project_label = QLabel("No project open")
        self.project_label.setWordWrap(True)
        layout.addWidget(self.project_label)
        row = QHBoxLayout()
        self.new_button = make_button("New…", "Create a project from a folder of images",
                                      self._ask_new)
        self.open_button = make_button("Open…", "Open a project folder", self._ask_open)
        self.add_button = make_button("Add images…", "Import more images or volumes", self._ask_add)
        for widget in (self.new_button, self.open_button, self.add_button):
            row.addWidget(widget)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.import_button = make_button("Import tags…", "Apply tags from a CSV", self._ask_import)
        self.export_button = make_button("Export tags…", "Save all tags as CSV", self._ask_export)
        row.addWidget(self.import_button)
        row.addWidget(self.export_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m tagged")
        layout.addWidget(self.progress)
        return box

    def _classes_box(self) -> QGroupBox:
        box = QGroupBox("Classes")
        layout = QVBoxLayout(box)
        self.class_list = QListWidget()
        self.class_list.setMaximumHeight(130)
        self.class_list.itemDoubleClicked.connect(lambda _item: self._ask_rename())
        layout.addWidget(self.class_list)
        row = QHBoxLayout()
        self.add_class_button = make_button("Add class…", "Create a class", self._ask_add_class)
        self.rename_button = make_button("Rename…", "Rename the selected class", self._ask_rename)
        row.addWidget(self.add_class_button)
        row.addWidget(self.rename_button)
        layout.addLayout(row)
        return box

    def _item_box(self) -> QGroupBox:
        box = QGroupBox("Current image")
        layout = QVBoxLayout(box)
        self.item_label = ElidedLabel("—")
        self.item_label.setStyleSheet("font-size: 14px; font-weight: bold;")
        self.position_label = QLabel("")
        self.state_label = QLabel("")
        self.state_label.setStyleSheet("font-size: 13px;")
        for widget in (self.item_label, self.position_label, self.state_label):
            layout.addWidget(widget)
        self.tag_boxes_layout = QVBoxLayout()
        layout.addLayout(self.tag_boxes_layout)
        self.tag_boxes: dict[int, QCheckBox] = {}
        self.no_finding_button = make_button("0  No finding", "Nothing of any class here (0); "
                                             "keys: 1–9 toggle a class, N/P move, U untagged",
                                         self.mark_no_finding)
        layout.addWidget(self.no_finding_button)
        row = QHBoxLayout()
        self.prev_button = make_button("◀ Prev (P)", "Previous image", self.previous)
        self.next_button = make_button("Next (N) ▶", "Next image", self.next)
        self.untagged_button = make_button("Untagged (U)", "Next untagged image",
                                           self.next_untagged)
        for widget in (self.prev_button, self.next_button, self.untagged_button):
            row.addWidget(widget)
        layout.addLayout(row)
        form = QFormLayout()
        self.filter_combo = QComboBox()
        self.filter_combo.currentIndexChanged.connect(self._on_filter)
        form.addRow("Show", self.filter_combo)
        self.window_combo = QComboBox()
        self.window_combo.addItem("auto")
        self.window_combo.currentTextChanged.connect(self._on_window)
        form.addRow("Window", self.window_combo)
        self.advance_box = QCheckBox("Go to the next image after 0")
        self.advance_box.setChecked(True)
        form.addRow(self.advance_box)
        layout.addLayout(form)
        return box

    def _slide_box(self) -> QGroupBox:
        """Shown on a slide's tile: tag the whole slide, or every tile under drawn shapes."""
        self.slide_box = QGroupBox("Slide")
        layout = QVBoxLayout(self.slide_box)
        row = QHBoxLayout()
        self.slide_negative_button = make_button(
            "Negative slide", "No class anywhere in this slide: every tile gets no finding",
            self.tag_slide_negative)
        self.slide_show_button = make_button(
            "Show slide", "Show the whole slide under the tile (draw shapes on it to tag a "
            "region)", self.show_slide)
        row.addWidget(self.slide_negative_button)
        row.addWidget(self.slide_show_button)
        layout.addLayout(row)
        self.region_button = make_button(
            "Tag tiles in shapes", "Give every tile whose centre lies in the selected Shapes "
            "layer's shapes this tile's tags", self.tag_tiles_in_shapes)
        layout.addWidget(self.region_button)
        self.slide_box.setVisible(False)
        return self.slide_box

    def tag_slide_negative(self) -> None:
        item = self.nav.current
        if item is None or item.tile is None or self._edit_refused():
            return
        try:
            count = self.project.catalog.tag_slide(item.source_id, set())
        except ProjectError as error:
            show_error(f"Slide not tagged: {error}")
            return
        self._reload_tags(f"Negative slide: {count} tiles tagged with no finding")

    def show_slide(self) -> None:
        from .slide_view import show_slide

        item = self.nav.current
        if item is None or item.tile is None:
            return
        show_slide(self.viewer, self.project, self.project.catalog.source(item.source_id))
        self.view.to_bottom()

    def tag_tiles_in_shapes(self, shapes_layer=None) -> int:
        """Copy the current tile's tags to every tile under the shapes (the selected Shapes
        layer unless one is given); returns how many tiles were tagged."""
        from napari.layers import Shapes

        from ..slides.regions import tiles_in_shapes

        item = self.nav.current
        if item is None or item.tile is None or self._edit_refused():
            return 0
        if not self.nav.is_tagged(item):
            show_error("Tag this tile first: its tags are what the tiles in the shapes get")
            return 0
        layer = shapes_layer or self.viewer.layers.selection.active
        if not isinstance(layer, Shapes) or not len(layer.data):
            show_error("Select a Shapes layer with the shapes around the tiles to tag")
            return 0
        world = [np.array([layer.data_to_world(v) for v in shape]) for shape in layer.data]
        source = self.project.catalog.source(item.source_id)
        tiles = tiles_in_shapes(self.project.catalog.items(item.source_id), source, world)
        tags = self.nav.tags_of(item)
        try:
            self.project.catalog.set_many_tags({t.id: set(tags) for t in tiles})
        except ProjectError as error:
            show_error(f"Tags not saved: {error}")
            return 0
        self._reload_tags(f"{len(tiles)} tiles in the shapes tagged like this one")
        return len(tiles)

    def _reload_tags(self, message: str) -> None:
        self.nav.load(self.project)
        self._refresh()
        show_info(message)

    @property
    def view(self) -> ItemView:
        """The viewer's one image layer, shared with the other docks."""
        return self.session.view

    def _bind_keys(self) -> None:
        keys = {str(d): (lambda d=d: self.press_digit(d), f"toggle class {d}")
                for d in range(1, 10)}
        keys["0"] = (self.mark_no_finding, "no finding (and go to the next image)")
        keys["u"] = (self.next_untagged, "next untagged image")
        keys.update(navigation_keys(self.next, self.previous))
        self.session.keys.register(self, keys)

    # -- project -------------------------------------------------------------------------------
    def open_project(self, path: str | Path) -> None:
        """Open the project folder at ``path`` (read-only when another process writes it)."""
        shared = self.session.project
        if shared is not None and shared.root == Path(path).resolve():
            self._adopt(shared)
            return
        if self._refused_while_busy():
            return
        try:
            project = Project.open(path)
        except ProjectLockedError as error:
            project = Project.open(path, read_only=True)
            show_warning(f"{error}\nOpened read-only: you can look, but tags are not saved.")
        except ProjectError as error:
            show_error(str(error))
            return
        self.set_project(project)

    def _adopt(self, project: Project) -> None:
        if self.project is project:
            return
        self.project = project
        self.nav.load(project)
        self._rebuild_classes()
        self._refresh()
        self._show_current()

    def close_project(self) -> None:
        """Close the shared project (refused while a job runs on it)."""
        if self._refused_while_busy():
            return
        self.session.set_project(None)
        self._forget_project()

    def _refused_while_busy(self) -> bool:
        """Say why, and return True, when a job runs on the project (it must stay open)."""
        reason = self.session.busy
        if reason is not None:
            show_warning(reason)
        return reason is not None

    def _forget_project(self) -> None:
        self.project = None
        self.nav.clear()
        self._rebuild_classes()
        self._refresh()

    def import_paths(self, paths: list[Path]):
        """Import files in the background; the dock follows the progress."""
        if self.project is None:
            return None
        project = self.project

        worker = thread_worker(iter_import)(project, paths)
        worker.yielded.connect(self._import_progress)
        worker.returned.connect(self._import_finished)
        worker.errored.connect(lambda error: show_error(f"Import failed: {error}"))
        ended = threading.Event()
        worker.finished.connect(ended.set)
        worker.finished.connect(self.session.check_jobs)
        self.progress.setFormat("importing %v / %m")
        self.session.job_started("An image import", lambda: not ended.is_set())
        worker.start()
        return worker

    def _import_progress(self, step: tuple[int, int, str]) -> None:
        done, total, _name = step
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _import_finished(self, report) -> None:
        self.progress.setFormat("%v / %m tagged")
        if report.skipped:
            show_warning(report.summary())
        else:
            show_info(report.summary())
        self.nav.load(self.project)
        self._refresh()
        self._show_current()

    # -- tagging -------------------------------------------------------------------------------
    def press_digit(self, digit: int) -> None:
        if digit == 0:
            self.mark_no_finding()
            return
        classes = self.nav.classes
        if digit <= len(classes):
            self.toggle_class(classes[digit - 1])

    def toggle_class(self, image_class: ImageClass) -> None:
        item = self.nav.current
        if item is None or self.project is None:
            return
        tags = self.nav.tags_of(item) ^ {image_class.id}
        self._save_tags(item, tags)

    def mark_no_finding(self) -> None:
        item = self.nav.current
        if item is None or self.project is None:
            return
        if self._save_tags(item, set()) and self.advance_box.isChecked():
            self.next()

    def _save_tags(self, item: Item, tags: set[int]) -> bool:
        try:
            self.project.catalog.set_tags(item.id, tags)
        except ProjectError as error:
            show_error(f"Tag not saved: {error}")
            return False
        self.nav.record(item, tags)
        self._refresh()
        return True

    # -- navigation ----------------------------------------------------------------------------
    def next(self) -> None:
        if self._edit_refused():
            return
        self.nav.step(+1)
        self._show_current()

    def previous(self) -> None:
        if self._edit_refused():
            return
        self.nav.step(-1)
        self._show_current()

    def next_untagged(self) -> None:
        if self._edit_refused():
            return
        if not self.nav.jump_to_untagged():
            show_info("Every image is tagged.")
        self._show_current()

    def go_to(self, item_id: int) -> None:
        if self._edit_refused():
            return
        self.nav.go_to(item_id)
        self._show_current()

    def _show_current(self) -> None:
        item = self.nav.current
        if item is not None and self.project is not None:
            self._following_dims = True
            try:
                self.session.show_item(item, self)
                self._offer_windows(item)
                self.view.apply_window(self.window_combo.currentText())
            except Exception as error:  # noqa: BLE001 - a bad file must not break the dock
                show_error(f"{item.name}: cannot show this image: {error}")
            finally:
                self._following_dims = False
        self._refresh()

    def _edit_refused(self) -> bool:
        """While a mask is being edited in Review, the canvas stays on that image."""
        if self.session.editor is not None:
            show_info("A mask is being edited in Review: save (E) or cancel (Esc) it first.")
        return self.session.editor is not None

    def _on_labels_changed(self) -> None:
        """A job finished: it may have imported items (new images segmented by a round)."""
        if self.project is not None and self.project.catalog.count_items() != self.nav.total:
            self.nav.load(self.project)
            self._refresh()

    def _on_item_shown(self, item: Item, origin: object) -> None:
        """Another dock moved the canvas to ``item``: tags now apply to it."""
        if origin is self or self.project is None or item.id not in self.nav.ids:
            return
        self.nav.go_to(item.id)
        self._offer_windows(item)
        self._refresh()

    def _offer_windows(self, item: Item) -> None:
        """CT windows for CT sources only; colour images have no window at all."""
        image = self.project.source_image(item.source_id)
        names = ["auto", *WINDOW_PRESETS] if image.modality == "CT" else ["auto"]
        current = self.window_combo.currentText()
        self.window_combo.blockSignals(True)
        self.window_combo.clear()
        self.window_combo.addItems(names)
        self.window_combo.setCurrentText(current if current in names else "auto")
        self.window_combo.blockSignals(False)
        self.window_combo.setEnabled(not image.is_rgb and len(names) > 1)
        self.window_combo.setToolTip(
            "Colour image: shown as it is, no window" if image.is_rgb else
            "CT windows (level/width in HU)" if len(names) > 1 else
            "Not CT: contrast is set automatically from the image (windows are in HU)")

    def _on_window(self, preset: str) -> None:
        if self.project is not None:
            self.view.apply_window(preset)

    def _on_dims_step(self, _event=None) -> None:
        """Scrolling through a volume in napari moves to that slice's item."""
        if self.session.current_item is None:   # nothing shown (a project is closing)
            return
        if self._following_dims or self.project is None or self.nav.current is None:
            return
        plane = self.view.displayed_plane()
        if plane is not None and plane != self.nav.current.display_index:
            self.nav.go_to_plane(self.nav.current.source_id, plane)
            self.session.current_item = self.nav.current
            self._refresh()

    def _on_filter(self, index: int) -> None:
        key = self.filter_combo.itemData(index)
        if key is not None:
            self.nav.set_filter(key)
            self._show_current()

    # -- keys in the dock ----------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
            self.press_digit(key - Qt.Key.Key_0)
        elif key in _NAV_KEYS:
            getattr(self, _NAV_KEYS[key])()
        else:
            super().keyPressEvent(event)

    # -- display -------------------------------------------------------------------------------
    def _rebuild_classes(self) -> None:
        while self.tag_boxes_layout.count():
            widget = self.tag_boxes_layout.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.tag_boxes = {}
        for number, image_class in enumerate(self.nav.classes, start=1):
            box = QCheckBox(f"{number}  {image_class.name}" if number <= 9 else image_class.name)
            box.setIcon(color_swatch(image_class.color))
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.clicked.connect(lambda _checked, c=image_class: self.toggle_class(c))
            self.tag_boxes_layout.addWidget(box)
            self.tag_boxes[image_class.id] = box
        self._rebuild_filters()

    def _rebuild_filters(self) -> None:
        current = self.filter_combo.currentData()
        self.filter_combo.blockSignals(True)
        self.filter_combo.clear()
        for key, label in FILTERS:
            self.filter_combo.addItem(label, key)
        for image_class in self.nav.classes:
            self.filter_combo.addItem(f"With {image_class.name}", f"class:{image_class.id}")
        found = self.filter_combo.findData(current)
        self.filter_combo.setCurrentIndex(max(found, 0))
        self.filter_combo.blockSignals(False)

    def _refresh(self) -> None:
        has_project = self.project is not None
        for widget in (self.add_button, self.import_button, self.export_button,
                       self.add_class_button, self.rename_button, self.no_finding_button,
                       self.prev_button, self.next_button, self.untagged_button):
            widget.setEnabled(has_project)
        self._refresh_project_buttons()
        if not has_project:
            self.project_label.setText("No project open — New… or Open…")
            self.item_label.setText("—")
            self.position_label.setText("")
            self.state_label.setText("")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.class_list.clear()
            return
        mode = " (read-only)" if self.project.read_only else ""
        self.project_label.setText(f"<b>{self.project.root.name}</b>{mode}<br>"
                                   f"<small>{self.project.root}</small>")
        self._refresh_counts()
        self._refresh_item()

    def _refresh_project_buttons(self, _reason: str | None = None) -> None:
        """New… and Open… would close the shared project: not while a job runs on it."""
        reason = self.session.busy
        for button in (self.new_button, self.open_button):
            allow(button, reason)

    def _refresh_counts(self) -> None:
        total, tagged = self.nav.total, self.nav.tagged_count
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(tagged)
        selected = self.class_list.currentRow()
        self.class_list.clear()
        positives = self.nav.class_counts()
        for number, image_class in enumerate(self.nav.classes, start=1):
            key = f"[{number}] " if number <= 9 else ""
            entry = QListWidgetItem(color_swatch(image_class.color),
                                    f"{key}{image_class.name} — {positives[image_class.id]} images")
            entry.setData(Qt.ItemDataRole.UserRole, image_class.id)
            self.class_list.addItem(entry)
        self.class_list.addItem(f"[0] no finding — {self.nav.no_finding_count} images")
        self.class_list.setCurrentRow(min(selected, self.class_list.count() - 1))

    def _refresh_item(self) -> None:
        item = self.nav.current
        self.slide_box.setVisible(item is not None and item.tile is not None)
        if item is None:
            self.item_label.setText("No image matches the filter" if self.nav.total else
                                    "The project has no images yet — Add images…")
            self.position_label.setText("")
            self.state_label.setText("")
            return
        self.item_label.setText(item.name)
        where = f"slice {item.slice_index} · " if item.is_slice else ""
        self.position_label.setText(f"{where}{self.nav.position + 1} of {self.nav.visible_count}"
                                    f" shown · {item.width}×{item.height} px")
        tags = self.nav.tags_of(item)
        for class_id, box in self.tag_boxes.items():
            box.setChecked(class_id in tags)
        self.state_label.setText(self._state_text(item, tags))

    def _state_text(self, item: Item, tags: set[int]) -> str:
        if not self.nav.is_tagged(item):
            return "<span style='color:#E69F00'>● Not tagged yet</span>"
        if not tags:
            return "<span style='color:#56B4E9'>● Tagged: no finding</span>"
        names = ", ".join(c.name for c in self.nav.classes if c.id in tags)
        return f"<span style='color:#009E73'>● Tagged: {names}</span>"

    # -- dialogs -------------------------------------------------------------------------------
    def _ask_new(self) -> None:
        if self._refused_while_busy():
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder with images or volumes")
        if not folder:
            return
        target = QFileDialog.getExistingDirectory(self, "Empty folder for the new project")
        if not target:
            return
        try:
            project = Project.create(target)
        except ProjectError as error:
            show_error(str(error))
            return
        self.set_project(project)
        self.import_paths([Path(folder)])

    def _ask_open(self) -> None:
        if self._refused_while_busy():
            return
        folder = QFileDialog.getExistingDirectory(self, "Project folder")
        if folder:
            self.open_project(folder)

    def _ask_add(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with images or volumes")
        if folder:
            self.import_paths([Path(folder)])

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Tags CSV", filter="CSV (*.csv)")
        if path:
            self.import_tags_csv(Path(path))

    def import_tags_csv(self, path: Path, class_name: str = "tumour") -> None:
        try:
            report = import_tags(self.project, path, class_name=class_name)
        except ProjectError as error:
            show_error(str(error))
            return
        (show_warning if report.errors or report.unmatched else show_info)(report.summary())
        self.nav.load(self.project)
        self._rebuild_classes()
        self._show_current()

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save tags as", filter="CSV (*.csv)")
        if path:
            rows = export_tags(self.project, path)
            show_info(f"Saved the tags of {rows} images to {path}")

    def _ask_add_class(self) -> None:
        name, ok = QInputDialog.getText(self, "New class", "Name of the finding:")
        if ok and name:
            self.add_class(name)

    def add_class(self, name: str) -> None:
        try:
            self.project.catalog.add_class(name)
        except ProjectError as error:
            show_error(str(error))
            return
        self.nav.reload_classes(self.project)
        self._rebuild_classes()
        self._refresh()

    def _ask_rename(self) -> None:
        entry = self.class_list.currentItem()
        class_id = entry.data(Qt.ItemDataRole.UserRole) if entry else None
        if class_id is None:
            show_info("Select a class to rename.")
            return
        old = self.project.catalog.class_(class_id).name
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old)
        if ok and name:
            self.rename_class(class_id, name)

    def rename_class(self, class_id: int, name: str) -> None:
        try:
            self.project.catalog.rename_class(class_id, name)
        except ProjectError as error:
            show_error(str(error))
            return
        self.nav.reload_classes(self.project)
        self._rebuild_classes()
        self._refresh()
