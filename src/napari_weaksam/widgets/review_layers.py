"""The layers the Review dock shows over the current item's image, with fixed names.

* ``"proposal"`` — Labels drawn as a **2-pixel outline** in the class colour: the method's
  proposal (for a reviewed item, the proposal the person decided on). Not meant to be painted:
  the layer's ``editable`` is set to False after every data update (napari resets it when data
  is assigned), so napari's paint tools are greyed out on it.
* ``"your label"`` — Labels, **filled**, opacity 0.5: what the person stands behind — the
  accepted proposal or the correction — and what is painted while editing (the SAM boxes paint
  into it too). Outline vs fill keeps an edit visible against the proposal.
* ``"CAM · <class>"`` — Image, hidden by default; viridis with transparency rising from 0 (a low
  CAM shows the image, not a tint), contrast 0–1.
* ``"affinity"`` — Image, grey, hidden by default.
* ``"refined · <class>"`` — Image, cividis with the same transparency ramp, hidden by default.

None of the map colours is a class colour (the class colours are Okabe-Ito's), and the Review
dock shows a colour bar for every visible map (:mod:`.legend`).

A 2D item gets 2D layers. A slice of a volume gets volume-shaped layers (planes × H × W) with the
source's scale, so they line up with the whole-volume image layer of
:class:`~napari_weaksam.widgets.item_view.ItemView`: the current item's maps sit on its plane
(zeros elsewhere), and the ``"proposal"`` layer holds the proposal of *every* slice of the volume
that has one, so scrolling through the volume shows each slice's proposal.

Layers are reused by name (only ``.data`` changes) while their shape allows, so moving between
items does not make the viewer flicker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from napari.utils.colormaps import Colormap, DirectLabelColormap, ensure_colormap

from ..project import ImageClass, LabelState
from ..project.maps import MapRecord
from ..review.queue import shown_proposals
from .item_view import layer_kwargs, tile_frame

if TYPE_CHECKING:
    import napari

    from ..project import Item, Project
    from ..review import ReviewEntry

PROPOSAL = "proposal"
YOUR_LABEL = "your label"
AFFINITY = "affinity"
CAM_PREFIX = "CAM · "
REFINED_PREFIX = "refined · "
REVIEW_META = "weaksam_review"   # metadata key on our layers: their kind
KINDS = ("cam", "affinity", "refined", "proposal")
_STACK_ORDER = ("cam", "affinity", "refined", "proposal", "your label")  # bottom to top
MAP_COLORMAPS = {"cam": "viridis", "affinity": "gray", "refined": "cividis"}
PROPOSAL_CONTOUR = 2      # pixels
YOUR_LABEL_OPACITY = 0.5


def map_colormap(kind: str) -> Colormap:
    """The colormap of a map layer: transparent at 0 for CAM and refined maps, so low values
    leave the image as it is."""
    base = ensure_colormap(MAP_COLORMAPS[kind])
    values = np.linspace(0.0, 1.0, 16)
    colors = np.asarray(base.map(values), dtype=float)
    if kind != "affinity":
        colors[:, 3] = np.clip(values * 1.5, 0.0, 0.9)
    return Colormap(colors, name=f"weaksam {kind}", controls=values)


_IMAGE_STYLE = {
    "cam": {"blending": "translucent", "opacity": 1.0},
    "affinity": {"blending": "translucent", "opacity": 0.6},
    "refined": {"blending": "translucent", "opacity": 1.0},
}


@dataclass(frozen=True)
class Geometry:
    """Where an item's 2D plane sits in the layers: their shape, the plane index, the scale."""

    shape: tuple[int, ...]
    plane: tuple[int, ...]       # () for a 2D item, (display_index,) for a slice
    scale: tuple[float, ...]
    translate: tuple[float, ...] | None = None   # a slide's tile: where it lies on the slide

    def embed(self, plane: np.ndarray, dtype) -> np.ndarray:
        """A layer-shaped array holding ``plane`` on the item's plane, zeros elsewhere."""
        data = np.zeros(self.shape, dtype=dtype)
        data[self.plane] = plane
        return data


def item_geometry(project: Project, item: Item) -> Geometry:
    if item.tile is not None:
        scale, translate = tile_frame(project, item)
        return Geometry((item.height, item.width), (), scale, translate)
    image = project.source_image(item.source_id)
    scale = tuple(float(s) for s in layer_kwargs(project, item.source_id).get(
        "scale", image.spacing))
    if image.is_volume:
        return Geometry((image.n_slices, item.height, item.width), (item.display_index,), scale)
    return Geometry((item.height, item.width), (), scale[-2:])


def _frame(geometry: Geometry) -> dict:
    """A layer's scale and translate for ``geometry`` (no translate: the origin)."""
    translate = geometry.translate or (0.0,) * len(geometry.scale)
    return {"scale": geometry.scale, "translate": translate}


def _place(layer, geometry: Geometry) -> None:
    frame = _frame(geometry)
    layer.scale, layer.translate = frame["scale"], frame["translate"]


def label_colormap(classes: list[ImageClass]) -> DirectLabelColormap:
    """Each class in its colour; background transparent; unknown values white."""
    colors: dict = {None: "white", 0: "transparent"}
    colors.update({c.label_value: c.color for c in classes})
    return DirectLabelColormap(color_dict=colors)


def label_dtype(classes: list[ImageClass]):
    return np.uint8 if max((c.label_value for c in classes), default=1) < 256 else np.int32


class ReviewLayers:
    """Keeps the review layers of the current entry in one viewer."""

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.visible = {"cam": False, "affinity": False, "refined": False, "proposal": True}
        self.geometry: Geometry | None = None
        self.entry: ReviewEntry | None = None
        self._layers: dict[str, object] = {}   # name → layer, ours only
        self._stack_key: tuple | None = None
        self._stack: np.ndarray | None = None

    # -- access --------------------------------------------------------------------------------
    def layer(self, name: str):
        """Our layer called ``name`` when it is still in the viewer, else None."""
        layer = self._layers.get(name)
        return layer if layer is not None and layer in self.viewer.layers else None

    @property
    def your_label(self):
        return self.layer(YOUR_LABEL)

    @property
    def names(self) -> list[str]:
        return [name for name in self._layers if self.layer(name) is not None]

    def your_label_plane(self) -> np.ndarray:
        """A copy of the current item's plane of "your label" (height × width)."""
        layer = self.your_label
        if layer is None or self.geometry is None:
            raise RuntimeError("no item is shown")
        return np.array(layer.data[self.geometry.plane], copy=True)

    def set_your_label_plane(self, mask: np.ndarray) -> None:
        layer = self.your_label
        if layer is None or self.geometry is None:
            raise RuntimeError("no item is shown")
        layer.data[self.geometry.plane] = mask
        layer.refresh()

    def proposal_plane(self) -> np.ndarray:
        """A copy of the current item's plane of the "proposal" layer."""
        layer = self.layer(PROPOSAL)
        if layer is None or self.geometry is None:
            raise RuntimeError("no item is shown")
        return np.array(layer.data[self.geometry.plane], copy=True)

    # -- showing -------------------------------------------------------------------------------
    def show(self, project: Project, entry: ReviewEntry, round_id: int | None = None) -> None:
        """Show ``entry``'s proposal, the person's correction and the item's maps."""
        item = entry.item
        geometry = item_geometry(project, item)
        classes = project.catalog.classes()
        dtype = label_dtype(classes)
        colormap = label_colormap(classes)
        self.entry, self.geometry = entry, geometry

        wanted: dict[str, tuple[str, np.ndarray]] = {}
        for image_class in classes:
            for kind, prefix in (("cam", CAM_PREFIX), ("refined", REFINED_PREFIX)):
                data = _map(project, item, kind, image_class.id, round_id)
                if data is not None:
                    wanted[prefix + image_class.name] = (kind, geometry.embed(data, np.float32))
        affinity = _map(project, item, "affinity", None, round_id)
        if affinity is not None:
            wanted[AFFINITY] = ("affinity", geometry.embed(affinity, np.float32))
        for name in [n for n, layer in self._layers.items()
                     if layer.metadata.get(REVIEW_META) in ("cam", "affinity", "refined")]:
            if name not in wanted:
                self._remove(name)
        for name, (kind, data) in wanted.items():
            self._put_image(name, kind, data, geometry)

        proposals = self._proposal_stack(project, item, geometry, dtype, round_id)
        self._put_labels(PROPOSAL, "proposal", proposals, geometry, colormap, 0.9)
        proposal_layer = self.layer(PROPOSAL)
        proposal_layer.contour = PROPOSAL_CONTOUR
        proposal_layer.editable = False
        yours = self._final_stack(project, item, geometry, dtype)
        self._put_labels(YOUR_LABEL, "your label", yours, geometry, colormap,
                         YOUR_LABEL_OPACITY)
        self._restack()

    def set_visible(self, kind: str, visible: bool) -> None:
        """Show or hide the layers of ``kind`` ("cam", "affinity", "refined", "proposal")."""
        if kind not in KINDS:
            raise ValueError(f"layer kind {kind!r}: choose one of {', '.join(KINDS)}")
        self.visible[kind] = bool(visible)
        for name in self.names:
            layer = self._layers[name]
            if layer.metadata.get(REVIEW_META) == kind:
                layer.visible = bool(visible)

    def clear(self) -> None:
        for name in list(self._layers):
            self._remove(name)
        self.entry = self.geometry = None
        self._stack_key = self._stack = None

    # -- helpers -------------------------------------------------------------------------------
    def _proposal_stack(self, project: Project, item: Item, geometry: Geometry, dtype,
                        round_id: int | None) -> np.ndarray:
        """Every proposed plane of the item's source (just the item for a 2D image)."""
        items = project.catalog.items(item.source_id) if geometry.plane else [item]
        found = shown_proposals(project, round_id, [i.id for i in items])
        key = (str(project.root), item.source_id, geometry.shape, np.dtype(dtype).str,
               tuple(sorted(found.items())))
        if key == self._stack_key and self._stack is not None:
            return self._stack
        stack = np.zeros(geometry.shape, dtype)
        for other in items:
            if other.id in found:
                mask = project.labels.proposal_mask(project.labels.proposal(found[other.id]))
                index = (other.display_index,) if geometry.plane else ()
                stack[index] = mask
        self._stack_key, self._stack = key, stack
        return stack

    @staticmethod
    def _final_stack(project: Project, item: Item, geometry: Geometry, dtype) -> np.ndarray:
        """What the person stands behind on every reviewed plane of the item's source."""
        items = project.catalog.items(item.source_id) if geometry.plane else [item]
        states = project.labels.states()
        stack = np.zeros(geometry.shape, dtype)
        for other in items:
            if states.get(other.id) in (LabelState.ACCEPTED, LabelState.CORRECTED):
                final = project.labels.final_mask(other.id)
                if final is not None:
                    stack[(other.display_index,) if geometry.plane else ()] = final
        return stack

    def _put_image(self, name: str, kind: str, data: np.ndarray, geometry: Geometry) -> None:
        limits = (0.0, 1.0)
        if kind == "affinity":
            low, high = float(np.min(data)), float(np.max(data))
            limits = (low, high) if high > low else (0.0, 1.0)
        layer = self.layer(name)
        if layer is not None and layer.data.shape == data.shape:
            layer.data = data
            _place(layer, geometry)
            layer.contrast_limits = limits
            return
        if layer is not None:
            self._remove(name)
        self._layers[name] = self.viewer.add_image(
            data, name=name, contrast_limits=limits, colormap=map_colormap(kind),
            **_frame(geometry),
            visible=self.visible[kind], metadata={REVIEW_META: kind}, **_IMAGE_STYLE[kind])

    def _put_labels(self, name: str, kind: str, data: np.ndarray, geometry: Geometry,
                    colormap: DirectLabelColormap, opacity: float) -> None:
        layer = self.layer(name)
        if layer is not None and layer.data.shape == data.shape \
                and layer.data.dtype == data.dtype:
            if layer.data is not data:
                layer.data = data
            _place(layer, geometry)
            layer.colormap = colormap
            return
        if layer is not None:
            self._remove(name)
        visible = self.visible.get(kind, True)
        self._layers[name] = self.viewer.add_labels(
            data, name=name, colormap=colormap, opacity=opacity, visible=visible,
            **_frame(geometry),
            metadata={REVIEW_META: kind})

    def _remove(self, name: str) -> None:
        layer = self._layers.pop(name, None)
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    def _restack(self) -> None:
        """Keep our layers in a fixed order: maps, then proposal, then "your label" on top."""
        ours = sorted((layer for name in self.names for layer in [self._layers[name]]),
                      key=lambda layer: _STACK_ORDER.index(layer.metadata[REVIEW_META]))
        indices = [self.viewer.layers.index(layer) for layer in ours]
        if indices != sorted(indices):  # one at a time to the top, in order
            for layer in ours:
                self.viewer.layers.move(self.viewer.layers.index(layer), len(self.viewer.layers))


def _map(project: Project, item: Item, kind: str, class_id: int | None,
         round_id: int | None) -> np.ndarray | None:
    """The item's latest map of ``kind`` (of ``round_id`` when given), if it fits the item."""
    if round_id is None:
        record = project.maps.latest(item.id, kind, class_id)
    else:
        row = project.db.row(
            "SELECT * FROM maps WHERE item_id = ? AND kind = ? AND class_id IS ? AND round_id = ?"
            " ORDER BY id DESC LIMIT 1", (item.id, kind, class_id, round_id))
        record = None if row is None else MapRecord(
            row["id"], row["item_id"], row["round_id"], row["kind"], row["class_id"],
            row["array_key"])
    if record is None:
        return None
    data = project.maps.read(record)
    return data if data.shape == (item.height, item.width) else None
