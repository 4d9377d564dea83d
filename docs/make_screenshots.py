"""Regenerate the screenshots in docs/images (run under a display or `xvfb-run -a`).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import imageio.v3 as iio
import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_weaksam.io import read_image
from napari_weaksam.sample import make_sample_project, sample_dir
from napari_weaksam.widgets.launch import open_workspace

OUT = Path(__file__).resolve().parent / "images"


def settle(viewer: napari.Viewer) -> None:
    viewer.window._qt_window.resize(1400, 900)
    for _ in range(5):
        QApplication.processEvents()


def tagging_dock(root: Path) -> None:
    viewer = napari.Viewer(title="napari-weaksam")
    dock = open_workspace(viewer, root)
    brain = next(i for i in dock.nav.items if i.name == "brain1 z011")
    dock.go_to(brain.id)
    settle(viewer)
    iio.imwrite(OUT / "tagging-dock.png", viewer.screenshot(canvas_only=False, flash=False))
    viewer.close()


def box_tool() -> None:
    from napari_weaksam.widgets.box_tool import BoxToolWidget

    viewer = napari.Viewer(title="napari-weaksam")
    volume = read_image(sample_dir() / "images" / "brain1.nii.gz")
    truth = read_image(sample_dir() / "masks" / "brain1.nii.gz").data > 0
    plane = int(np.argmax(truth.sum(axis=(1, 2))))
    viewer.add_image(volume.data, name="brain1", scale=volume.spacing)
    labels = viewer.add_labels(np.zeros(volume.data.shape, np.uint8), name="correction",
                               scale=volume.spacing)
    labels.selected_label = 1
    viewer.dims.set_current_step(0, plane)
    widget = BoxToolWidget(viewer)
    widget.inline = True
    viewer.window.add_dock_widget(widget, name="SAM box tool", area="right")
    widget.image_combo.setCurrentText("brain1")
    widget.labels_combo.setCurrentText("correction")
    shapes = widget.start()
    ys, xs = np.nonzero(truth[plane])
    (y0, x0), (y1, x1) = (ys.min() - 3, xs.min() - 3), (ys.max() + 3, xs.max() + 3)
    shapes.add_rectangles(np.array([[plane, y0, x0], [plane, y0, x1], [plane, y1, x1],
                                    [plane, y1, x0]], float))
    world = np.array([[plane, y0, x0], [plane, y1, x1]], float) * np.asarray(volume.spacing)
    camera = getattr(viewer, "scene", viewer).camera
    camera.zoom *= 1.6
    camera.center = tuple(world.mean(axis=0))
    settle(viewer)
    iio.imwrite(OUT / "box-tool.png", viewer.screenshot(canvas_only=False, flash=False))
    viewer.close()


def training_dock(root: Path) -> None:
    """The Train dock after a short real EP-SAM run on the sample (a few minutes on a CPU)."""
    import time

    from napari_weaksam.jobs import MethodChoice
    from napari_weaksam.widgets.training import TrainingWidget

    viewer = napari.Viewer(title="napari-weaksam")
    tagging = open_workspace(viewer, root)
    training = TrainingWidget(viewer)
    viewer.window.add_dock_widget(training, name="Train", area="right")
    training._load_choice(MethodChoice(method="epsam", classifier_epochs=8, rounds=2,
                                       decoder_epochs=3))
    training.set_truth_dir(sample_dir() / "masks")
    training.start()
    while training.job is not None:
        QApplication.processEvents()
        time.sleep(0.05)
    tagging.go_to(tagging.nav.items[2].id)
    settle(viewer)
    iio.imwrite(OUT / "train-dock.png", viewer.screenshot(canvas_only=False, flash=False))
    viewer.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        tagging_dock(make_sample_project(Path(folder) / "sample"))
        training_dock(make_sample_project(Path(folder) / "train"))
    box_tool()
