"""Regenerate docs/images/review-dock.png (run under a display or `xvfb-run -a`).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_review_screenshot.py

The sample project gets demonstration proposals and CAMs made from its ground-truth masks
(blurred, then thresholded: smooth like a model's output), and a few decisions, so the list shows
every state. The viewer shows an H&E patch with its CAM and proposal.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import imageio.v3 as iio
import napari
import numpy as np
from qtpy.QtWidgets import QApplication
from scipy.ndimage import gaussian_filter

from napari_weaksam.io import read_image
from napari_weaksam.project import Project
from napari_weaksam.sample import make_sample_project, sample_dir
from napari_weaksam.widgets.session import session_for

OUT = Path(__file__).resolve().parent / "images"
SHOWN = "adenocarcinoma_GT2001849-1-400-004"
DEMO = {  # item → (confidence, decision)
    "adenocarcinoma_GT2001837-1-400-002": (0.91, "accepted"),
    SHOWN: (0.37, None),
    "adenocarcinoma_GT2001849-1-400-007": (0.58, "corrected"),
    "adenocarcinoma_GT2012118-1-400-002": (0.74, None),
    "normal_GT2000000-1-400-001": (0.88, "rejected"),
    "polyp_GT2001818-1-400-001": (0.46, None),
    "brain1 z012": (0.52, None),
    "brain1 z013": (0.63, None),
    "brain1 z014": (0.69, None),
}


def _truth(item) -> np.ndarray:
    if item.is_slice:
        volume = read_image(sample_dir() / "masks" / "brain1.nii.gz").data
        return np.asarray(volume[item.display_index]) > 0
    return read_image(sample_dir() / "masks" / f"{item.name}.png").data > 0


def add_demo_proposals(root: Path) -> None:
    """Proposals, CAMs and a few decisions on the sample project at ``root``."""
    with Project.open(root) as project:
        tumour = project.catalog.class_by_name("tumour")
        for item in project.catalog.items():
            if item.name not in DEMO:
                continue
            confidence, decision = DEMO[item.name]
            cam = gaussian_filter(_truth(item).astype(np.float32), sigma=item.width / 28)
            cam = cam / cam.max() if cam.max() > 0 else cam
            proposal = (cam > 0.45).astype(np.uint8) * tumour.label_value
            project.labels.add_proposal(item.id, proposal, method="weakmedsam",
                                        confidence=confidence)
            project.maps.add(item.id, "cam", cam, class_id=tumour.id)
            if decision == "corrected":
                project.labels.review(item.id, decision,
                                      _truth(item).astype(np.uint8) * tumour.label_value)
            elif decision is not None:
                project.labels.review(item.id, decision)


def review_dock(root: Path, out: Path = OUT / "review-dock.png") -> Path:
    """Screenshot of the Review dock on ``root`` (the sample, with :func:`add_demo_proposals`)."""
    viewer = napari.Viewer(title="napari-weaksam")
    viewer.window._qt_window.resize(1500, 950)
    session_for(viewer).set_project(Project.open(root))
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-weaksam", "Review")
    shown = next(e.item for e in widget.queue.entries if e.item.name == SHOWN)
    widget.go_to(shown.id)
    viewer.layers.selection.active = widget.view.layer
    for _ in range(10):
        QApplication.processEvents()
    viewer.reset_view()
    for _ in range(5):
        QApplication.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, viewer.screenshot(canvas_only=False, flash=False))
    session_for(viewer).set_project(None)
    viewer.close()
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        sample = make_sample_project(Path(folder) / "sample")
        add_demo_proposals(sample)
        print(review_dock(sample))
