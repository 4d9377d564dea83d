"""The "Export masks" box of the Review dock: format, whether to add unreviewed proposals and to
replace the files of an earlier export, and a button that asks for a folder (see
:mod:`napari_weaksam.export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QVBoxLayout

from ..project import Project, ProjectError
from .qt_helpers import make_button

if TYPE_CHECKING:
    from ..export import ExportReport

FORMATS = (("tiff", "TIFF"), ("nifti", "NIfTI (source geometry)"), ("zarr", "zarr"))
REPLACE = "Replace existing files"
PROPOSALS_HINT = "tick + proposals to include unreviewed proposals"
STATUS_CHARS = 56  # the longest refusal line: one line of the dock's status


class ExportBox(QGroupBox):
    """Writes the project's reviewed masks; ``project`` gives the project to export (None: no
    project open), ``on_done`` receives a one-line summary, or a short refusal (the full one is a
    notification)."""

    def __init__(self, project: Callable[[], Project | None],
                 on_done: Callable[[str], None]) -> None:
        super().__init__("Export masks")
        self._project = project
        self._on_done = on_done
        self.format = QComboBox()
        for key, text in FORMATS:
            self.format.addItem(text, key)
        self.format.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.proposals = _checkbox("+ proposals", "Also export the proposals nobody reviewed yet "
                                   "(rejected ones never)")
        self.replace = _checkbox(REPLACE, "Write over the label files (and export.csv) of an "
                                 "earlier export into the same folder")
        column = QVBoxLayout(self)
        top, bottom = QHBoxLayout(), QHBoxLayout()
        top.addWidget(self.format, 1)
        top.addWidget(make_button("Export…", "Write accepted and corrected masks to a folder, "
                                  "with export.csv telling each slice's state", self._ask))
        bottom.addWidget(self.proposals)
        bottom.addWidget(self.replace)
        bottom.addStretch(1)
        column.addLayout(top)
        column.addLayout(bottom)

    def _ask(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export masks to")
        if folder:
            self.export(Path(folder))

    def export(self, dest: Path) -> ExportReport | None:
        """Write the reviewed masks (and proposals when ticked) in the chosen format; the
        report, or None when nothing was written (the dock's status says why)."""
        from ..export import ExistingFiles, export_masks

        project = self._project()
        if project is None:
            return None
        try:
            report = export_masks(project, dest, fmt=self.format.currentData(),
                                  include_proposals=self.proposals.isChecked(),
                                  overwrite=self.replace.isChecked())
        except ExistingFiles as error:
            self._refuse(f"{error.headline()} — tick {REPLACE}",
                         error.explain(f"tick {REPLACE}, or choose another folder"))
            return None
        except (ValueError, OSError, ProjectError) as error:
            short = str(error).removeprefix(f"{dest}: ").replace(str(dest), dest.name)
            self._refuse(f"Not exported: {short}", f"Export: {error}", show_error)
            return None
        self._on_done(f"{dest.name}: {report.summary(PROPOSALS_HINT)}")
        return report

    def _refuse(self, short: str, notice: str,
                show: Callable[[str], None] = show_warning) -> None:
        """``short``, cut to one line, in the dock's status; the full ``notice`` notified."""
        self._on_done(_one_line(short))
        show(notice)


def _one_line(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= STATUS_CHARS else line[:STATUS_CHARS - 1] + "…"


def _checkbox(text: str, tip: str) -> QCheckBox:
    box = QCheckBox(text)
    box.setToolTip(tip)
    box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return box
