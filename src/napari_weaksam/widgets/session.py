"""The project the plugin's docks share in one viewer.

A project folder is locked by the process that writes it, so the docks of one viewer must share
one open :class:`~napari_weaksam.project.Project`. Whichever dock opens a project publishes it
here; the others follow through ``project_changed``. ``labels_changed`` tells them that
proposals changed (a round finished or was restored), ``reviews_changed`` that a person decided.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from psygnal import Signal

if TYPE_CHECKING:
    import napari

    from ..project import Project


class ProjectSession:
    project_changed = Signal(object)   # the Project, or None when closed
    labels_changed = Signal()          # new proposals (a round finished or was restored)
    reviews_changed = Signal()         # a person accepted, corrected, rejected or undid
    item_requested = Signal(int)       # a dock asks the others to show this item id

    def __init__(self) -> None:
        self.project: Project | None = None

    def set_project(self, project: Project | None) -> None:
        if project is self.project:
            return
        if self.project is not None:
            self.project.close()
        self.project = project
        self.project_changed.emit(project)


_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session_for(viewer: napari.Viewer) -> ProjectSession:
    """The session of ``viewer`` (created on first use, gone with the viewer)."""
    session = _SESSIONS.get(viewer)
    if session is None:
        session = _SESSIONS[viewer] = ProjectSession()
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
