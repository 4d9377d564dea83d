"""Small Qt helpers shared by the docks."""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtGui import QColor, QIcon, QPainter, QPixmap
from qtpy.QtWidgets import QLabel, QPushButton, QWidget

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


class ElidedLabel(QLabel):
    """A one-line label that never widens its dock: a long name is cut in the middle ("…"),
    whole in the tooltip (image names differ at their end)."""

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        metrics = self.fontMetrics()
        text = metrics.elidedText(self.text(), Qt.TextElideMode.ElideMiddle,
                                  self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), text)
