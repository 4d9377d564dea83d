"""Showing a project's current item in a napari viewer (whole volume for slices)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..io import WINDOW_PRESETS, default_contrast_limits, window_to_limits

if TYPE_CHECKING:
    import napari

    from ..project import Item, Project

IMAGE_LAYER_META = "weaksam_source_id"
PROJECT_META = "weaksam_project"
SLIDE_META = "weaksam_slide_overview"


def tile_frame(project: Project, item: Item) -> tuple[tuple[float, float], tuple[float, float]]:
    """Scale and translate (µm, or level-0 pixels when the file gives no pixel size) that put
    a tile item where it lies on its slide."""
    source = project.catalog.source(item.source_id)
    dy, dx = source.tiling["downsample"]
    scale = (source.spacing[0] * dy, source.spacing[1] * dx)
    return scale, (item.tile.y * scale[0], item.tile.x * scale[1])


class ItemView:
    """Keeps one image layer in the viewer that shows the current item's source.

    2D images replace the layer; slices of a volume show the whole volume with napari's slider
    on the item's plane, so scrolling through a volume stays native.
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.layers: list = []
        self.source_id: int | None = None
        self.tile_id: int | None = None   # the tile item shown, when the source is a slide

    @property
    def layer(self):
        """The (first) image layer of the current source, if any."""
        return self.layers[0] if self.layers else None

    def show(self, project: Project, item: Item) -> None:
        if item.tile is not None:
            self._show_tile(project, item)
            return
        if self.source_id != item.source_id or self.tile_id is not None or any(
            layer not in self.viewer.layers for layer in self.layers
        ):
            self._replace_layer(project, item.source_id)
        if project.catalog.source(item.source_id).kind == "volume":
            world = self.layer.data_to_world([item.display_index, 0, 0])
            self.viewer.dims.set_point(0, world[0])

    def to_bottom(self) -> None:
        """Keep the image under every other layer (maps and masks are drawn over it), and a
        slide overview under the image."""
        overview = [layer for layer in self.viewer.layers if layer.metadata.get(SLIDE_META)]
        bottom = overview + [layer for layer in self.layers if layer in self.viewer.layers]
        indices = [self.viewer.layers.index(layer) for layer in bottom]
        if indices and indices != list(range(len(indices))):
            for position, layer in enumerate(bottom):
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
        self.layers, self.source_id, self.tile_id = [], None, None

    def _show_tile(self, project: Project, item: Item) -> None:
        """A tile of a slide: its own pixels, placed where it lies on the slide (µm), so it sits
        on the slide overview when that is shown."""
        if self.tile_id == item.id and all(layer in self.viewer.layers for layer in self.layers):
            return
        self.clear()
        scale, translate = tile_frame(project, item)
        added = self.viewer.add_image(
            project.item_image(item), name=item.name, rgb=item.channels == 3, scale=scale,
            translate=translate,
            metadata={IMAGE_LAYER_META: item.source_id, PROJECT_META: str(project.root)})
        self.layers, self.source_id, self.tile_id = [added], item.source_id, item.id
        if any(layer.metadata.get(SLIDE_META) for layer in self.viewer.layers):
            self.viewer.camera.center = tuple(t + s * n / 2 for t, s, n in zip(
                translate, scale, (item.height, item.width), strict=True))
        else:
            self.viewer.reset_view()

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
