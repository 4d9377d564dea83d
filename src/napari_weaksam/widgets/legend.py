"""What the colours on the canvas mean: the two masks, and a colour bar for each visible map."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QGridLayout, QLabel, QWidget

from .review_layers import MAP_COLORMAPS, ReviewLayers, map_colormap

MASKS_TEXT = "<b>▭</b> outline: proposal &nbsp;·&nbsp; <b>■</b> fill: your label"
_MAP_NAMES = {"cam": "CAM", "affinity": "affinity", "refined": "refined"}
BAR_SIZE = (120, 10)


def colour_bar(kind: str, size: tuple[int, int] = BAR_SIZE) -> QPixmap:
    """A horizontal bar of the map layer's colormap from 0 (left) to 1, over mid grey so its
    transparency shows as it does over an image."""
    width, height = size
    rgba = np.asarray(map_colormap(kind).map(np.linspace(0.0, 1.0, width)), dtype=float)
    alpha = rgba[:, 3:4]
    rgb = rgba[:, :3] * alpha + 0.5 * (1.0 - alpha)
    row = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    pixels = np.ascontiguousarray(np.repeat(row[None], height, axis=0))
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class LayerLegend(QWidget):
    """One line for the masks, then ``0 [bar] 1  CAM`` for each visible map layer."""

    def __init__(self) -> None:
        super().__init__()
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.masks_label = QLabel(MASKS_TEXT)
        self.masks_label.setToolTip("Your label: the mask you accepted or corrected, or are "
                                    "painting")
        self.masks_label.setWordWrap(True)
        layout.addWidget(self.masks_label, 0, 0, 1, 4)
        self.bars: dict[str, _Row] = {}
        for row, kind in enumerate(MAP_COLORMAPS, start=1):
            bar = QLabel()
            bar.setPixmap(colour_bar(kind))
            parts = [QLabel("0"), bar, QLabel("1"), QLabel(_MAP_NAMES[kind])]
            for column, part in enumerate(parts):
                layout.addWidget(part, row, column, Qt.AlignmentFlag.AlignLeft)
            holder = _Row(parts)
            self.bars[kind] = holder
            holder.set_visible(False)

    def show_for(self, layers: ReviewLayers) -> None:
        """Show the bars of the map kinds that are visible on the canvas now."""
        for kind, row in self.bars.items():
            shown = layers.visible.get(kind, False) and any(
                layers.layer(name).metadata.get("weaksam_review") == kind
                for name in layers.names)
            row.set_visible(shown)

    def visible_kinds(self) -> list[str]:
        return [kind for kind, row in self.bars.items() if row.visible]


class _Row:
    """The widgets of one legend row, shown and hidden together."""

    def __init__(self, parts: list[QWidget]) -> None:
        self.parts = parts
        self.visible = False

    def set_visible(self, visible: bool) -> None:
        self.visible = visible
        for part in self.parts:
            part.setVisible(visible)
