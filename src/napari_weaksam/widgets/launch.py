"""Opening the plugin's docks in a viewer: with a project, or with the bundled sample."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

    from .tagging import TaggingWidget


def open_tagging_dock(viewer: napari.Viewer, project_path: str | Path) -> TaggingWidget:
    """Add the Tagging dock to ``viewer`` with the project at ``project_path`` open."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-weaksam", "Tagging")
    widget.open_project(project_path)
    return widget


def open_sample_project() -> list:
    """napari sample: the bundled sample project's first image, with the Tagging dock open on
    the project (the dock adopts the layer once napari has added it)."""
    import napari
    from qtpy.QtCore import QTimer

    from ..project import Project
    from ..sample import make_sample_project
    from .item_view import layer_kwargs

    root = make_sample_project()
    with Project.open(root, read_only=True) as project:
        first = project.catalog.items()[0]
        data = project.source_image(first.source_id).data
        kwargs = layer_kwargs(project, first.source_id)
    viewer = napari.current_viewer()
    if viewer is not None:
        QTimer.singleShot(0, lambda: open_tagging_dock(viewer, root))
    return [(data, kwargs, "image")]
