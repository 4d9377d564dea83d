"""SAM box tool: draw a rectangle and the segment lands in a Labels layer; accept or undo.

Draw boxes on the "SAM boxes" shapes layer. Each box is segmented on the current 2D plane of the
image and painted into the target Labels layer with its selected label. ``A`` (or *Accept*) keeps
the painted masks and clears the boxes; ``Z`` (or *Undo*) takes the last box's mask back out.
The Labels choice starts on "your label" (the Review dock's editable layer) when there is one,
never on the read-only "proposal".

Inside the Review dock's edit mode the tool is *embedded*: it paints into "your label" of the item
being edited, uses the project's cached embedding of the image when it has one (no encoding, the
first box is as fast as the next), and loads the model when the edit starts, saying so. There the
Review's Save/Cancel end the boxes, so the box layer binds only ``Z``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from ..backbones.embedding_cache import content_hash
from ..backbones.sam import Embedding, SamBackbone
from ..backbones.weights import available_weights
from .keymap import BOX_LAYER
from .review_layers import PROPOSAL, YOUR_LABEL

if TYPE_CHECKING:
    import napari

INLINE_ENV = "WEAKSAM_INLINE"  # "1": compute in the GUI thread (deterministic tests)


@dataclass
class _Undo:
    plane: tuple[int, ...]   # index of the 2D plane in the labels layer (empty for 2D)
    before: np.ndarray


def box_from_corners(corners_yx: np.ndarray) -> np.ndarray:
    """(K, 2) rectangle corners in (row, col) → [x0, y0, x1, y1]."""
    ys, xs = corners_yx[:, 0], corners_yx[:, 1]
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


class BoxToolWidget(QWidget):
    """Dock: choose the image and the Labels layer; boxes on the canvas become masks."""

    def __init__(self, napari_viewer: napari.Viewer,
                 backbone_factory: Callable[[str], SamBackbone] | None = None, *,
                 embedding_source: Callable[[SamBackbone, np.ndarray], Embedding | None]
                 | None = None, embedded: bool = False) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.embedded = embedded
        self._embedding_source = embedding_source
        self._backbone_factory = backbone_factory or _load_backbone
        self._backbone: SamBackbone | None = None
        self.cache_hits = 0
        self._embeddings: dict[str, Embedding] = {}
        self._undo: list[_Undo] = []
        self._seen_boxes = 0
        self.inline = os.environ.get(INLINE_ENV) == "1"
        self.last_worker = None
        self._build()
        napari_viewer.layers.events.inserted.connect(self._refresh_choices)
        napari_viewer.layers.events.removed.connect(self._refresh_choices)
        self._refresh_choices()

    def _build(self) -> None:
        form = QFormLayout(self)
        self.model_combo = QComboBox()
        self.model_combo.addItems([w.model for w in available_weights()] or ["litemedsam"])
        self.model_combo.setToolTip("SAM model; official SAM weights are found in the weights "
                                    "folder (weaksam config weights_dir PATH)")
        self.model_combo.currentTextChanged.connect(self._forget_model)
        form.addRow("Model", self.model_combo)
        self.image_combo = QComboBox()
        self.labels_combo = QComboBox()
        for combo in (self.image_combo, self.labels_combo):   # long layer names: no wider dock
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        form.addRow("Image", self.image_combo)
        form.addRow("Labels", self.labels_combo)
        row = QHBoxLayout()
        self.start_button = QPushButton("Draw boxes")
        self.start_button.setToolTip("Add the box layer and start drawing rectangles")
        self.start_button.clicked.connect(lambda: self.start())
        self.accept_button = QPushButton("Accept (A)")
        self.accept_button.clicked.connect(lambda: self.accept())
        self.undo_button = QPushButton("Undo (Z)")
        self.undo_button.clicked.connect(lambda: self.undo())
        for button in (self.start_button, self.accept_button, self.undo_button):
            row.addWidget(button)
        form.addRow(row)
        self.status = QLabel("Draw a box around a structure: SAM segments it.")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        if self.embedded:   # the Review dock chooses the image, the layer and the model
            for row in range(3):
                form.setRowVisible(row, False)
            self.start_button.setVisible(False)
            self.accept_button.setVisible(False)

    def _forget_model(self, _name: str = "") -> None:
        self._backbone = None
        self._embeddings = {}

    # -- layers ------------------------------------------------------------------------------
    def _refresh_choices(self, _event=None) -> None:
        from napari.layers import Image, Labels

        for combo, kind in ((self.image_combo, Image), (self.labels_combo, Labels)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            names = [layer.name for layer in self.viewer.layers if isinstance(layer, kind)]
            if kind is Labels:   # never the read-only proposal; "your label" first
                names = sorted((n for n in names if n != PROPOSAL), key=lambda n: n != YOUR_LABEL)
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            combo.blockSignals(False)

    def target(self, image_layer, labels_layer) -> None:
        """Segment on ``image_layer``'s plane and paint into ``labels_layer``."""
        self._refresh_choices()
        self.image_combo.setCurrentText(image_layer.name)
        self.labels_combo.setCurrentText(labels_layer.name)
        self.preload()

    def preload(self) -> None:
        """Load the model now (in the background) so the first box does not wait for it."""
        if self._backbone is not None:
            return
        self.status.setText("Loading the SAM model (once)…")
        if self.inline:
            self._backbone_loaded(self._backbone_factory(self.model_combo.currentText()))
            return
        worker = thread_worker(self._backbone_factory)(self.model_combo.currentText())
        worker.returned.connect(self._backbone_loaded)
        worker.errored.connect(lambda error: show_error(f"SAM box tool: {error}"))
        self.last_worker = worker
        worker.start()

    def _backbone_loaded(self, backbone: SamBackbone) -> None:
        self._backbone = backbone
        self.status.setText("Ready: draw a box around a structure, SAM segments it.")

    def finish(self) -> None:
        """Forget the boxes and their undo (the edit ended); the box layer goes away."""
        self._undo.clear()
        if BOX_LAYER in self.viewer.layers:
            self.viewer.layers.remove(BOX_LAYER)
        self._seen_boxes = 0

    @property
    def image_layer(self):
        name = self.image_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401

    @property
    def labels_layer(self):
        name = self.labels_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401

    def start(self):
        """The shapes layer for boxes, in rectangle mode; made once."""
        if BOX_LAYER in self.viewer.layers:
            layer = self.viewer.layers[BOX_LAYER]
        else:
            image = self.image_layer
            # the image's scale keeps napari's slider stepping through planes, not millimetres
            geometry = {"ndim": image.ndim, "scale": image.scale} if image is not None else {}
            layer = self.viewer.add_shapes(name=BOX_LAYER, edge_color="#FFD700",
                                           face_color="transparent", edge_width=1, **geometry)
            layer.events.data.connect(self._on_boxes_changed)
            if not self.embedded:
                layer.bind_key("a", lambda _layer: self.accept(), overwrite=True)
            layer.bind_key("z", lambda _layer: self.undo(), overwrite=True)
        self._seen_boxes = len(layer.data)
        layer.mode = "add_rectangle"
        self.viewer.layers.selection.active = layer
        return layer

    # -- boxes -------------------------------------------------------------------------------
    def _on_boxes_changed(self, event=None) -> None:
        layer = self.viewer.layers[BOX_LAYER]
        if len(layer.data) <= self._seen_boxes:
            self._seen_boxes = len(layer.data)
            return
        new = layer.data[self._seen_boxes:]
        self._seen_boxes = len(layer.data)
        for corners in new:
            self.segment_box(np.array([layer.data_to_world(c) for c in corners]))

    def segment_box(self, corners_world: np.ndarray) -> None:
        """Segment the box (corners in world coordinates) on the current plane."""
        image, labels = self.image_layer, self.labels_layer
        if image is None or labels is None:
            show_error("Choose an image layer and a Labels layer for the box tool.")
            return
        plane_index, plane = self._current_plane(image)
        data_corners = np.array([image.world_to_data(c) for c in corners_world])
        box = box_from_corners(data_corners[:, -2:])  # rgb layers have no channel coordinate
        self.status.setText("Segmenting…")
        if self.inline:
            self._paint(plane_index, self._predict(plane, box), labels)
            return
        worker = thread_worker(self._predict)(plane, box)
        worker.returned.connect(lambda mask: self._paint(plane_index, mask, labels))
        worker.errored.connect(lambda error: show_error(f"SAM box tool: {error}"))
        self.last_worker = worker
        worker.start()

    def _current_plane(self, image) -> tuple[tuple[int, ...], np.ndarray]:
        lead = image.ndim - 2
        position = image.world_to_data(self.viewer.dims.point)
        index = tuple(int(round(position[i])) for i in range(lead))
        data = image.data[index] if lead else image.data
        return index, np.asarray(data)

    def _predict(self, plane: np.ndarray, box: np.ndarray) -> np.ndarray:
        if self._backbone is None:
            self._backbone = self._backbone_factory(self.model_combo.currentText())
        key = content_hash(plane)
        if key not in self._embeddings:
            cached = (self._embedding_source(self._backbone, plane)
                      if self._embedding_source is not None else None)
            self.cache_hits += cached is not None
            embedding = cached if cached is not None else self._backbone.encode_one(plane)
            self._embeddings = {key: embedding}  # keep the current one
        decoded = self._backbone.decode(self._embeddings[key], boxes=box[None])
        return decoded.masks()[0, 0]

    def _paint(self, plane_index: tuple[int, ...], mask: np.ndarray, labels) -> None:
        data = labels.data
        target = data[plane_index] if plane_index else data
        if target.shape != mask.shape:
            show_error(f"The Labels layer plane {target.shape} does not match the image "
                       f"{mask.shape}; choose a Labels layer of the same size.")
            return
        self._undo.append(_Undo(plane_index, np.array(target, copy=True)))
        target[mask] = labels.selected_label
        labels.refresh()
        then = "Z undoes; E saves the correction." if self.embedded else "A accepts, Z undoes."
        self.status.setText(f"{int(mask.sum())} pixels → label {labels.selected_label}. {then}")

    # -- accept / undo -----------------------------------------------------------------------
    def accept(self) -> None:
        """Keep what was painted and clear the boxes."""
        self._undo.clear()
        if BOX_LAYER in self.viewer.layers:
            layer = self.viewer.layers[BOX_LAYER]
            layer.data = []
            self._seen_boxes = 0
        self.status.setText("Accepted.")

    def undo(self) -> None:
        """Take the last box's mask back out of the Labels layer."""
        labels = self.labels_layer
        if not self._undo or labels is None:
            self.status.setText("Nothing to undo.")
            return
        last = self._undo.pop()
        if last.plane:
            labels.data[last.plane] = last.before
        else:
            labels.data[...] = last.before
        labels.refresh()
        self.status.setText("Undone.")


def _load_backbone(model: str) -> SamBackbone:
    from ..backbones.device import pick_device
    from ..backbones.loaders import load_backbone

    return load_backbone(model, device=pick_device())
