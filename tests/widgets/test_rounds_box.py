"""The Train dock's Rounds box: each round's Dice against a folder of reference masks, and
going back to a round."""

from __future__ import annotations

import pytest

from napari_weaksam.evaluation import find_truth
from napari_weaksam.project import Project
from napari_weaksam.sample import sample_dir
from napari_weaksam.widgets.session import session_for
from napari_weaksam.widgets.training import TrainingWidget

from .rounds import propose_round

pytestmark = pytest.mark.gui


def test_each_round_shows_its_dice_once_masks_are_given_and_can_be_current_again(
        make_napari_viewer, qtbot, sample_copy):
    root = sample_copy()
    with Project.open(root) as project:
        truth = find_truth(project, sample_dir() / "masks")
        right = propose_round(project, {i: m.astype("uint8") for i, m in truth.items()})
        empty = propose_round(project, {i: 0 * m.astype("uint8") for i, m in truth.items()})
    viewer = make_napari_viewer()
    training = TrainingWidget(viewer)
    qtbot.addWidget(training)
    session_for(viewer).set_project(Project.open(root))
    rounds = training.rounds
    texts = [rounds.list.item(i).text() for i in range(rounds.list.count())]
    assert texts == [f"#{empty} · manual · done", f"#{right} · manual · done"]
    assert not rounds.restore_button.isEnabled()   # nothing selected yet

    rounds.set_truth_dir(sample_dir() / "masks")
    assert rounds.truth_label.text() == "Truth: masks"
    texts = [rounds.list.item(i).text() for i in range(rounds.list.count())]
    assert texts[0].startswith(f"#{empty} ·") and texts[0].endswith("· Dice 0.00")
    assert texts[1].startswith(f"#{right} ·") and texts[1].endswith("· Dice 1.00")

    rounds.list.setCurrentRow(1)
    assert rounds.restore_button.isEnabled()
    rounds.restore_selected()
    project = session_for(viewer).project
    latest = project.rounds.rounds()[-1]
    assert latest.id > empty and f"#{right} are current again" in training.status.text()
    item_id = next(iter(truth))
    assert (project.labels.proposal_mask(project.labels.latest_proposal(item_id)) > 0).sum() == \
        truth[item_id].sum()
    assert rounds.list.count() == 3    # the restore is a round of its own, listed at once
    session_for(viewer).set_project(None)
