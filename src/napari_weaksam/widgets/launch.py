"""Opening the plugin's panel in a viewer: with a project, or with the bundled sample."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

    from .workspace import WorkspaceWidget


def open_workspace(viewer: napari.Viewer, project_path: str | Path) -> WorkspaceWidget:
    """Add the WeakSAM panel to ``viewer`` with the project at ``project_path`` open (a second
    call shows the same panel: napari keeps one dock per plugin widget)."""
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-weaksam", "WeakSAM")
    widget.tagging.open_project(project_path)
    return widget


def open_sample_project() -> list:
    """napari sample: the bundled sample project's first image, with the WeakSAM panel open on
    the project (the panel adopts the layer once napari has added it)."""
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
        QTimer.singleShot(0, lambda: open_workspace(viewer, root))
    return [(data, kwargs, "image")]
