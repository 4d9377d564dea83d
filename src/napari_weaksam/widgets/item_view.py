"""Showing a project's current item in a napari viewer (whole volume for slices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..io import WINDOW_PRESETS, default_contrast_limits, window_to_limits

if TYPE_CHECKING:
    import napari

    from ..project import Item, Project

IMAGE_LAYER_META = "weaksam_source_id"
PROJECT_META = "weaksam_project"


class ItemView:
    """Keeps one image layer in the viewer that shows the current item's source.

    2D images replace the layer; slices of a volume show the whole volume with napari's slider
    on the item's plane, so scrolling through a volume stays native.
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.layers: list = []
        self.source_id: int | None = None

    @property
    def layer(self):
        """The (first) image layer of the current source, if any."""
        return self.layers[0] if self.layers else None

    def show(self, project: Project, item: Item) -> None:
        if self.source_id != item.source_id or any(
            layer not in self.viewer.layers for layer in self.layers
        ):
            self._replace_layer(project, item.source_id)
        if project.catalog.source(item.source_id).kind == "volume":
            world = self.layer.data_to_world([item.display_index, 0, 0])
            self.viewer.dims.set_point(0, world[0])

    def to_bottom(self) -> None:
        """Keep the image under every other layer (maps and masks are drawn over it)."""
        indices = [self.viewer.layers.index(layer) for layer in self.layers
                   if layer in self.viewer.layers]
        if indices and indices != list(range(len(indices))):
            for position, layer in enumerate(self.layers):
                self.viewer.layers.move(self.viewer.layers.index(layer), position)

    def displayed_plane(self) -> int | None:
        """The volume plane napari shows now, or None when the layer is 2D."""
        if self.layer is None or self.layer.ndim - self.layer.rgb < 3:
            return None
        return int(round(self.layer.world_to_data(self.viewer.dims.point)[0]))

    def apply_window(self, preset: str) -> None:
        """Set the contrast of the image layer from a CT window preset, or automatically."""
        for layer in self.layers:
            if layer.rgb:
                continue
            if preset in WINDOW_PRESETS:
                layer.contrast_limits = window_to_limits(*WINDOW_PRESETS[preset])
            else:
                layer.reset_contrast_limits()

    def clear(self) -> None:
        for layer in self.layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers, self.source_id = [], None

    def _replace_layer(self, project: Project, source_id: int) -> None:
        self.clear()
        adopted = self._find_layer(project, source_id)
        if adopted is not None:  # e.g. opened by the napari sample with this project
            self.layers, self.source_id = [adopted], source_id
            return
        image = project.source_image(source_id)
        kwargs = layer_kwargs(project, source_id)
        added = self.viewer.add_image(image.data, **kwargs)
        if image.is_volume:
            self.viewer.dims.axis_labels = ("slice", "y", "x")
        self.layers = added if isinstance(added, list) else [added]
        self.source_id = source_id
        self.viewer.reset_view()

    def _find_layer(self, project: Project, source_id: int):
        for layer in self.viewer.layers:
            meta = layer.metadata
            if (meta.get(IMAGE_LAYER_META) == source_id
                    and meta.get(PROJECT_META) == str(project.root)):
                return layer
        return None


def layer_kwargs(project: Project, source_id: int) -> dict:
    """napari ``add_image`` arguments for a source: name, rgb/channels, scale, contrast."""
    image = project.source_image(source_id)
    source = project.catalog.source(source_id)
    kwargs: dict = {"name": source.path.rsplit("/", 1)[-1], "rgb": image.is_rgb,
                    "metadata": {IMAGE_LAYER_META: source_id, PROJECT_META: str(project.root)}}
    if "C" in image.axes and not image.is_rgb:
        kwargs["channel_axis"] = image.axes.index("C")
    else:
        kwargs["scale"] = image.spacing
        limits = default_contrast_limits(image)
        if limits is not None:
            kwargs["contrast_limits"] = limits
    return kwargs
