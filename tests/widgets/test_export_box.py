"""The Review dock's "Export masks" box, in a real widget with a status line like the dock's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from napari.utils.notifications import notification_manager
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from napari_weaksam.export import MANIFEST
from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project
from napari_weaksam.widgets.export_box import STATUS_CHARS, ExportBox

PROPOSALS_HINT = "tick + proposals to include unreviewed proposals"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """The sample with two 2D items accepted and one waiting for review."""
    with Project.open(make_sample_project(tmp_path / "p")) as opened:
        images = [i for i in opened.catalog.items() if not i.is_slice]
        for item in images[:3]:
            mask = np.ones((item.height, item.width), np.uint8)
            opened.labels.add_proposal(item.id, mask, method="manual")
        for item in images[:2]:
            opened.labels.review(item.id, "accepted")
        yield opened


@pytest.fixture
def dock(qtbot, project: Project) -> Iterator[tuple[ExportBox, QLabel]]:
    """The box and the status line it reports to, inside one shown widget."""
    host, status = QWidget(), QLabel("")
    box = ExportBox(lambda: project, status.setText)
    layout = QVBoxLayout(host)
    layout.addWidget(box)
    layout.addWidget(status)
    qtbot.addWidget(host)
    host.show()
    yield box, status  # ``host`` is kept alive meanwhile (qtbot holds a weak reference)


def last_notice() -> str:
    return str(notification_manager.records[-1].message)


def test_a_reexport_is_refused_in_the_docks_words_until_replace_is_ticked(dock, tmp_path):
    box, status = dock
    dest = tmp_path / "out"
    assert box.replace.text() == "Replace existing files" and not box.replace.isChecked()
    first = box.export(dest)
    assert first is not None and len(first.files) == 2
    (dest / first.files[0].name).write_bytes(b"edited by hand")

    assert box.export(dest) is None
    assert status.text() == "3 files already in out — tick Replace existing files"
    assert len(status.text()) <= STATUS_CHARS
    notice = last_notice()
    assert notice.startswith(f"3 files already exist in {dest}; tick Replace existing files")
    assert all(name in notice for name in (first.files[0].name, first.files[1].name, MANIFEST))
    assert "--overwrite" not in status.text() + notice
    assert first.files[0].read_bytes() == b"edited by hand"

    box.replace.setChecked(True)
    again = box.export(dest)
    assert again is not None and again.files == first.files
    assert first.files[0].read_bytes() != b"edited by hand"
    assert status.text().startswith("out: 2 files written")


def test_the_summary_explains_what_was_left_out(dock, tmp_path):
    box, status = dock
    box.export(tmp_path / "out")
    assert status.text() == (
        "out: 2 files written (2 items: accepted 2), 7 left out: 1 not reviewed, "
        f"5 without a proposal, 1 volume with no slice to export — {PROPOSALS_HINT}")
    box.proposals.setChecked(True)
    box.export(tmp_path / "all")
    assert status.text() == (
        "all: 3 files written (3 items: accepted 2, proposed 1), 6 left out: "
        "5 without a proposal, 1 volume with no slice to export")


def test_any_other_refusal_is_one_line_with_the_detail_notified(dock, project):
    box, status = dock
    assert box.export(project.root / "exports") is None
    assert status.text().startswith("Not exported: the export would be written inside")
    assert "\n" not in status.text()
    assert len(status.text()) <= STATUS_CHARS
    assert "inside the project" in last_notice()
    assert not (project.root / "exports").exists()
