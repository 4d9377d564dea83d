"""Fixtures the dock tests share."""

from __future__ import annotations

import pytest

from napari_weaksam.widgets.session import session_for
from napari_weaksam.widgets.tagging import TaggingWidget
from napari_weaksam.widgets.training import TrainingWidget


@pytest.fixture
def docks(make_napari_viewer, qtbot):
    """A viewer with the Tag and Train docks; a job still running at the end is stopped and the
    project closed."""
    viewer = make_napari_viewer()
    tagging, training = TaggingWidget(viewer), TrainingWidget(viewer)
    qtbot.addWidget(tagging)
    qtbot.addWidget(training)
    yield viewer, tagging, training
    if training.job is not None:
        training.job.stop()
        training.job.join(60)
    session_for(viewer).set_project(None)
