"""A slide overview in napari: the whole slide as a multiscale image (read lazily, level by
level, as napari asks) and its stitched labels as a multiscale Labels layer, in µm."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..slides.stitching import labels_path, open_labels, slide_tiling
from ..slides.tiling import slide_levels
from .item_view import SLIDE_META
from .review_layers import label_colormap

if TYPE_CHECKING:
    import napari

    from ..project import Project, Source


def show_slide(viewer: napari.Viewer, project: Project, source: Source) -> list:
    """Add (or replace) the overview layers of ``source``; returns them, slide first."""
    for layer in [la for la in viewer.layers if la.metadata.get(SLIDE_META) == source.id]:
        viewer.layers.remove(layer)
    image = project.source_image(source.id)
    levels = slide_levels(image)
    name = Path(source.path).name
    meta = {SLIDE_META: source.id}
    scale = tuple(float(s) for s in source.spacing[:2])
    added = [viewer.add_image(levels if len(levels) > 1 else levels[0],
                              multiscale=len(levels) > 1, rgb=image.is_rgb, scale=scale,
                              name=f"{name} (slide)", metadata=meta)]
    if labels_path(project, source).exists():
        tiling = slide_tiling(source)
        tile_scale = (scale[0] * tiling.downsample[0], scale[1] * tiling.downsample[1])
        pyramid = open_labels(project, source)
        added.append(viewer.add_labels(
            pyramid if len(pyramid) > 1 else pyramid[0], multiscale=len(pyramid) > 1,
            scale=tile_scale, name=f"{name} (stitched labels)", opacity=0.5,
            colormap=label_colormap(project.catalog.classes()), metadata=meta))
    for position, layer in enumerate(added):
        viewer.layers.move(viewer.layers.index(layer), position)
    return added
