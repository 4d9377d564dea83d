"""Regenerate the screenshots in docs/images from a real run (a few minutes on a CPU):

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/make_screenshots.py

The WeakSAM panel on the bundled sample project in a 1366 × 768 window: the Tag tab, the Train
tab after a short EP-SAM run, the Review tab on that run's proposals (one accepted, one being
corrected with a SAM box), and the stand-alone SAM box tool. Nothing is illustrative: every
mask is the method's or the person's.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_weaksam.io import read_image
from napari_weaksam.jobs import MethodChoice
from napari_weaksam.sample import make_sample_project, sample_dir
from napari_weaksam.widgets.launch import open_workspace

OUT = Path(__file__).resolve().parent / "images"
SCREEN = (1366, 768)


def settle(viewer: napari.Viewer, seconds: float = 0.3) -> None:
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(*SCREEN)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def shoot(viewer: napari.Viewer, name: str) -> None:
    settle(viewer)
    iio.imwrite(OUT / name, viewer.screenshot(canvas_only=False, flash=False))


def wait_for(condition, timeout: float = 1800.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the run did not finish")
        QApplication.processEvents()
        time.sleep(0.05)


def workspace(root: Path) -> None:
    viewer = napari.Viewer(title="napari-weaksam")
    panel = open_workspace(viewer, root)
    brain = next(i for i in panel.tagging.nav.items if i.name == "brain1 z011")
    panel.tagging.go_to(brain.id)
    shoot(viewer, "tagging-dock.png")

    panel.show_tab("Train")
    panel.training._load_choice(MethodChoice.of("epsam", epochs=8, rounds=2,
                                             decoder_epochs=3))
    panel.training.rounds.set_truth_dir(sample_dir() / "masks")
    panel.training.start()
    wait_for(lambda: panel.training.job is None)
    shoot(viewer, "train-dock.png")

    panel.show_tab("Review")
    review = panel.review
    review.go_to(review.queue.entries[0].item.id)
    review.accept()
    slice_entry = next(e for e in review.queue.entries if e.item.name == "brain1 z012")
    review.go_to(slice_entry.item.id)
    review.layer_boxes["cam"].setChecked(True)
    shoot(viewer, "review-dock.png")

    review.edit()
    review.box_tool.inline = True
    review.draw_boxes()
    truth = read_image(sample_dir() / "masks" / "brain1.nii.gz").data > 0
    plane = slice_entry.item.display_index
    ys, xs = np.nonzero(truth[plane])
    (y0, x0), (y1, x1) = (ys.min() - 3, xs.min() - 3), (ys.max() + 3, xs.max() + 3)
    shapes = viewer.layers["SAM boxes"]
    shapes.add_rectangles(np.array([[plane, y0, x0], [plane, y0, x1], [plane, y1, x1],
                                    [plane, y1, x0]], float))
    shoot(viewer, "box-tool.png")
    review.cancel_edit()

    panel.show_tab("Train")   # one proposal accepted: Start is Retrain, with its own options
    shoot(viewer, "retrain-dock.png")
    panel.tagging.close_project()
    viewer.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        workspace(make_sample_project(Path(folder) / "sample"))
