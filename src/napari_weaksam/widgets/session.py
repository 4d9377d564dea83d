"""The project the plugin's docks share in one viewer.

A project folder is locked by the process that writes it, so the docks of one viewer must share
one open :class:`~napari_weaksam.project.Project`. Whichever dock opens a project publishes it
here; the others follow through ``project_changed``. ``labels_changed`` tells them that
proposals changed (a round finished or was restored), ``reviews_changed`` that a person decided.

A dock that runs a background job on the project (a method run, an import) tells the session
(:meth:`ProjectSession.job_started`). While any job runs, :attr:`ProjectSession.busy` says why,
the project cannot be closed or replaced, and ``busy_changed`` lets every dock disable what would.

The session also owns what the docks show on the one canvas: **one current item**
(:meth:`ProjectSession.show_item`, announced by ``item_shown`` so every dock follows it), one image
layer (:attr:`view`), one set of review layers (:attr:`layers`) and one key map (:attr:`keys`).
A tag key therefore always tags the image on the canvas, whichever dock moved to it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psygnal import Signal
from qtpy.QtCore import QTimer

from ..project import ProjectError

if TYPE_CHECKING:
    import napari

    from ..project import Item, Project
    from .item_view import ItemView
    from .keymap import KeyMap
    from .review_layers import ReviewLayers

JOB_POLL_MS = 100


class ProjectBusyError(ProjectError):
    """The project cannot be closed or replaced: a background job is running on it."""


@dataclass(eq=False)
class _Job:
    what: str                      # "An EP-SAM run", "An image import"
    running: Callable[[], bool]    # False once the job's thread no longer touches the project


class ProjectSession:
    project_changed = Signal(object)   # the Project, or None when closed
    labels_changed = Signal()          # new proposals (a round finished or was restored)
    reviews_changed = Signal()         # a person accepted, corrected, rejected or undid
    item_requested = Signal(int)       # a dock asks the others to show this item id
    busy_changed = Signal(object)      # why the project is busy (str), or None once it is free
    item_shown = Signal(object, object)  # the item now on the canvas, and the dock that moved

    def __init__(self, viewer: napari.Viewer | None = None) -> None:
        self.project: Project | None = None
        self.current_item: Item | None = None
        self.editor: object | None = None   # the dock editing the current item's mask, if any
        self._jobs: list[_Job] = []
        self._timer: QTimer | None = None
        self._viewer = weakref.ref(viewer) if viewer is not None else None
        self._view: ItemView | None = None
        self._layers: ReviewLayers | None = None
        self._keys: KeyMap | None = None

    # -- what the canvas shows -----------------------------------------------------------------
    @property
    def viewer(self) -> napari.Viewer:
        viewer = self._viewer() if self._viewer is not None else None
        if viewer is None:
            raise RuntimeError("this session has no viewer")
        return viewer

    @property
    def view(self) -> ItemView:
        """The one image layer of the current item (at the bottom of the plugin's layers)."""
        if self._view is None:
            from .item_view import ItemView

            self._view = ItemView(self.viewer)
        return self._view

    @property
    def layers(self) -> ReviewLayers:
        """The current item's CAM, map, proposal and "your label" layers."""
        if self._layers is None:
            from .review_layers import ReviewLayers

            self._layers = ReviewLayers(self.viewer)
        return self._layers

    @property
    def keys(self) -> KeyMap:
        if self._keys is None:
            from .keymap import KeyMap

            self._keys = KeyMap(self.viewer)
        return self._keys

    def show_item(self, item: Item, origin: object) -> None:
        """Put ``item`` on the canvas (its image at the bottom) and tell every dock."""
        if self.project is None:
            return
        self.view.show(self.project, item)
        self.view.to_bottom()
        self.current_item = item
        self.item_shown.emit(item, origin)

    def clear_canvas(self) -> None:
        """Nothing is shown (the project closed); docks ignore the slider meanwhile."""
        self.current_item = None
        if self._layers is not None:
            self._layers.clear()
        if self._view is not None:
            self._view.clear()
        self.current_item = None

    @property
    def busy(self) -> str | None:
        """Why the project cannot be closed or replaced now (a job runs on it), else None."""
        running = [job for job in self._jobs if job.running()]
        if not running:
            return None
        return (f"{running[0].what} is in progress on this project: no project can be opened, "
                "created or closed, and no other job started, until it ends (or is stopped).")

    def set_project(self, project: Project | None) -> None:
        """Share ``project`` (None: close it); refused while a job runs on the current one."""
        if project is self.project:
            return
        reason = self.busy
        if reason is not None:
            raise ProjectBusyError(reason)
        if self._viewer is not None:
            self.clear_canvas()   # while the old project is still open: docks may react
        if self.project is not None:
            self.project.close()
        self.project = project
        self.project_changed.emit(project)

    def job_started(self, what: str, running: Callable[[], bool]) -> None:
        """A dock started a job on the project; it counts until ``running()`` returns False
        (checked every 100 ms, and at :meth:`check_jobs`)."""
        self._jobs.append(_Job(what, running))
        if self._timer is None:
            self._timer = QTimer()
            self._timer.setInterval(JOB_POLL_MS)
            self._timer.timeout.connect(self.check_jobs)
        self._timer.start()
        self.busy_changed.emit(self.busy)

    def check_jobs(self) -> None:
        """Forget the jobs that ended; tell the docks when that frees the project."""
        before = len(self._jobs)
        self._jobs = [job for job in self._jobs if job.running()]
        if not self._jobs and self._timer is not None:
            self._timer.stop()
        if len(self._jobs) != before:
            self.busy_changed.emit(self.busy)


_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session_for(viewer: napari.Viewer) -> ProjectSession:
    """The session of ``viewer`` (created on first use, gone with the viewer).

    napari hands each plugin dock its own proxy of the viewer: the session belongs to the viewer
    behind the proxy, so every dock of one window shares it.
    """
    viewer = getattr(viewer, "__wrapped__", viewer)
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = ProjectSession(viewer)
    return session


def follow(widget, signal, slot) -> None:
    """Connect ``slot`` to a session ``signal`` for as long as the Qt ``widget`` lives (a dock
    that was closed must not be called when another dock changes the project)."""
    signal.connect(slot)
    widget.destroyed.connect(lambda *_: signal.disconnect(slot))


class SessionDock:
    """What the Tagging and Review docks share: they show the viewer's session project, adopt one
    that another dock opens and forget it when it is closed. A dock defines ``_adopt(project)``
    and ``_forget_project()``, and calls :meth:`_join_session` once its widgets exist."""

    project: Project | None
    _adopt: Callable[[Project], None]          # show this project (defined by the dock)
    _forget_project: Callable[[], None]        # show no project (defined by the dock)

    def _join_session(self, viewer: napari.Viewer, project: Project | None) -> None:
        self.session = session_for(viewer)
        follow(self, self.session.project_changed, self._on_session_project)
        if project is not None:
            self.set_project(project)
        elif self.session.project is not None:
            self._adopt(self.session.project)

    def set_project(self, project: Project) -> None:
        """Show ``project`` here and share it with the plugin's other docks."""
        self.session.set_project(project)
        self._adopt(project)

    def _on_session_project(self, project: Project | None) -> None:
        if project is None:
            self._forget_project()
        elif project is not self.project:
            self._adopt(project)
