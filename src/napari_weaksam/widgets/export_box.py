"""The "Export masks" box of the Review dock: format, whether to add unreviewed proposals, and a
button that asks for a folder (see :mod:`napari_weaksam.export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout

from ..project import Project
from .qt_helpers import make_button

FORMATS = (("tiff", "TIFF"), ("nifti", "NIfTI (source geometry)"), ("zarr", "zarr"))


class ExportBox(QGroupBox):
    """Writes the project's reviewed masks; ``project`` gives the project to export (None: no
    project open), ``on_done`` receives the one-line summary."""

    def __init__(self, project: Callable[[], Project | None],
                 on_done: Callable[[str], None]) -> None:
        super().__init__("Export masks")
        self._project = project
        self._on_done = on_done
        row = QHBoxLayout(self)
        self.format = QComboBox()
        for key, text in FORMATS:
            self.format.addItem(text, key)
        self.format.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.proposals = QCheckBox("+ proposals")
        self.proposals.setToolTip("Also export the proposals nobody reviewed yet "
                                  "(rejected ones never)")
        self.proposals.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row.addWidget(self.format, 1)
        row.addWidget(self.proposals)
        row.addWidget(make_button("Export…", "Write accepted and corrected masks to a folder",
                                  self._ask))

    def _ask(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export masks to")
        if folder:
            self.export(Path(folder))

    def export(self, dest: Path):
        """Write the reviewed masks (and proposals when ticked) in the chosen format; the
        report, or None when nothing was written (the error is shown)."""
        from ..export import export_masks

        project = self._project()
        if project is None:
            return None
        try:
            report = export_masks(project, dest, fmt=self.format.currentData(),
                                  include_proposals=self.proposals.isChecked())
        except (FileExistsError, ValueError, OSError) as error:
            show_error(f"Export: {error}")
            return None
        self._on_done(f"{dest.name}: {report.summary()}")
        return report
