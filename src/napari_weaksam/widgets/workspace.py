"""The WeakSAM panel: Tag · Train · Review as tabs of one dock, on one project.

The tabs are the Tagging, Train and Review docks, sharing the viewer's session
(:mod:`.session`): one project, one current item, one image layer at the bottom with the review
layers over it, one key map (:mod:`.keymap`). The current tab owns the keys two tabs share
(``N`` / ``P`` move in the Tag list or in the Review queue); every other key works from any tab.
``?`` (or the *Keys* button) opens the shortcut sheet. One panel fits a 1366 × 768 screen: the
tabs stack what three docks would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import (
    QDialog,
    QFrame,
    QLabel,
    QScrollArea,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .qt_helpers import make_button
from .review import ReviewWidget
from .session import session_for
from .tagging import TaggingWidget
from .training import TrainingWidget

if TYPE_CHECKING:
    import napari

    from ..project import Project

TABS = ("Tag", "Train", "Review")


class WorkspaceWidget(QWidget):
    """One dock with the plugin's three tabs."""

    def __init__(self, napari_viewer: napari.Viewer, project: Project | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.tagging = TaggingWidget(napari_viewer)
        self.training = TrainingWidget(napari_viewer)
        self.review = ReviewWidget(napari_viewer)
        self._build()
        self.session.keys.register(self, {"Shift-/": (self.show_keys, "this shortcut sheet")})
        self.tabs.currentChanged.connect(self._on_tab)
        self._on_tab(self.tabs.currentIndex())
        if project is not None:
            self.tagging.set_project(project)

    def _build(self) -> None:
        self.setMinimumWidth(340)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.tabs = QTabWidget()
        self.pages = (self.tagging, self.training, self.review)
        for name, widget in zip(TABS, self.pages, strict=True):
            self.tabs.addTab(_scrolling(widget), name)
        self.keys_button = make_button("? Keys", "Every key of the plugin (?)", self.show_keys)
        self.tabs.setCornerWidget(self.keys_button, Qt.Corner.TopRightCorner)
        layout.addWidget(self.tabs, 1)

    def _on_tab(self, index: int) -> None:
        """The current tab owns the keys the tabs share (N / P)."""
        widget = self.pages[index]
        self.session.keys.active_owner = widget if widget is not self.training else self.tagging
        if widget is self.review and self.session.current_item is not None:
            self.review.go_to(self.session.current_item.id)

    def show_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(name))

    def show_keys(self) -> QDialog:
        """The shortcut sheet: every key and what it does now."""
        dialog = QDialog(self)
        dialog.setWindowTitle("WeakSAM keys")
        layout = QVBoxLayout(dialog)
        table = QTreeWidget()
        table.setHeaderLabels(["Key", "What it does"])
        table.setRootIsDecorated(False)
        for key, text in self.session.keys.sheet():
            table.addTopLevelItem(QTreeWidgetItem([key, text]))
        table.resizeColumnToContents(0)
        layout.addWidget(table)
        note = QLabel("The keys work on the canvas whatever WeakSAM layer is selected, and in "
                      "the panel. While editing, the painted layer keeps napari's painting keys "
                      "(E saves, Esc cancels).")
        note.setWordWrap(True)
        layout.addWidget(note)
        dialog.resize(460, 520)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.keys_dialog = dialog
        return dialog


def _scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a vertical scroll area: a short screen never makes napari's window taller
    than the screen (the layout is sized so that nothing needs scrolling at 1366 × 768)."""
    area = _FittingScrollArea()
    area.setWidget(widget)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scrollbar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(widget.minimumSizeHint().width() + scrollbar)
    return area


class _FittingScrollArea(QScrollArea):
    """Lays its widget out in the visible height when its minimum fits there (a plain
    resizable scroll area uses the preferred height, and a loss plot's preferred height pushed
    the Train tab's last buttons out of sight); scrolls only below the minimum."""

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt override
        super().setWidget(widget)
        widget.installEventFilter(self)   # its minimum changes (an edit row appears): refit

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._fit()

    def _fit(self) -> None:
        widget = self.widget()
        if widget is None:
            return
        viewport = self.viewport().size()
        minimum = widget.minimumSizeHint()
        needed = minimum.width() + self.verticalScrollBar().sizeHint().width()
        if needed > self.minimumWidth():   # content that grew wider widens the dock, not clips
            self.setMinimumWidth(needed)
        width = max(viewport.width(), minimum.width())
        layout = widget.layout()
        lowest = minimum.height()
        if layout is not None and layout.hasHeightForWidth():  # wrapped labels at this width
            lowest = max(lowest, layout.minimumHeightForWidth(width))
        widget.resize(width, max(viewport.height(), lowest))
