"""Small Qt helpers shared by the docks."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import QPushButton, QWidget

_OWN_TIP = "weaksam_own_tooltip"  # a widget's tooltip while it is enabled


def make_button(text: str, tip: str, slot) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.clicked.connect(lambda _checked=False: slot())
    return button


def color_swatch(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


def allow(widget: QWidget, reason: str | None) -> None:
    """Enable ``widget`` (its own tooltip back), or disable it with ``reason`` as its tooltip."""
    own = widget.property(_OWN_TIP)
    if own is None:
        own = widget.toolTip()
        widget.setProperty(_OWN_TIP, own)
    widget.setEnabled(reason is None)
    widget.setToolTip(own if reason is None else reason)
