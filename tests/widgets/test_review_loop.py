"""The whole loop in one real napari window (Xvfb), with a fast configuration:
tag → train → review (accept, correct, reject) → retrain → export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_weaksam.io import read_image
from napari_weaksam.io.readers import split_suffix
from napari_weaksam.jobs import MethodChoice
from napari_weaksam.project import LabelState, Project
from napari_weaksam.widgets.review import ReviewWidget
from napari_weaksam.widgets.tagging import TaggingWidget
from napari_weaksam.widgets.training import TrainingWidget

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def run_to_end(training: TrainingWidget, qtbot, choice: MethodChoice) -> None:
    training._load_choice(choice)
    training.start()
    qtbot.waitUntil(lambda: training.job is None, timeout=900_000)
    assert "Done" in training.status.text(), training.status.text()


def test_tag_train_review_retrain_export(make_napari_viewer, qtbot, tmp_path, sample_copy):
    root = sample_copy()   # embeddings cached
    viewer = make_napari_viewer()
    tagging, training, review = (TaggingWidget(viewer), TrainingWidget(viewer),
                                 ReviewWidget(viewer))
    for widget in (tagging, training, review):
        qtbot.addWidget(widget)
    tagging.open_project(root)
    project = tagging.project
    assert training.project is project and review.project is project

    # tag: one untagged H&E patch becomes "no finding" from the keyboard
    normal = next(i for i in tagging.nav.items if i.name.startswith("normal_"))
    project.catalog.clear_tags(normal.id)
    tagging.go_to(normal.id)
    tagging.press_digit(0)
    assert project.catalog.tags(normal.id) == set()
    assert project.catalog.item(normal.id).tagged

    # train: EP-SAM, preliminary decoder only
    run_to_end(training, qtbot, MethodChoice.of("epsam", cam_source="adl", epochs=6, rounds=0,
                                             decoder_epochs=1))
    first_round = project.rounds.rounds()[-1].id
    assert review.queue is not None and len(review.queue.entries) == len(tagging.nav.items)

    # review: accept one, correct one, reject one
    review.go_to(review.queue.entries[0].item.id)
    accepted = review.queue.current.item
    review.accept()
    corrected = review.queue.current.item
    review.edit()
    mask = np.zeros((corrected.height, corrected.width), np.uint8)
    mask[10:60, 20:90] = 1
    review.layers.set_your_label_plane(mask)
    review.save_edit()
    rejected = review.queue.current.item
    review.reject()
    states = project.labels.states()
    assert states[accepted.id] is LabelState.ACCEPTED
    assert states[corrected.id] is LabelState.CORRECTED
    assert states[rejected.id] is LabelState.REJECTED
    accepted_mask = project.labels.final_mask(accepted.id)

    # retrain: incremental, on top of the EP-SAM round; reviews stay, only unreviewed items
    # get new proposals
    assert training.start_button.text() == "Retrain with 2 reviewed masks"
    assert not training.scratch_box.isHidden() and not training.scratch_box.isChecked()
    # the options shown are Retrain's own (what Start runs now)
    assert not training.fields("retrain").native.isHidden()
    assert training.fields("epsam").native.isHidden()
    reviewed_proposals = {i: project.labels.latest_proposal(i).id
                          for i in (accepted.id, corrected.id)}
    run_to_end(training, qtbot, MethodChoice.of("epsam", cam_source="adl", epochs=6, rounds=1,
                                             decoder_epochs=1))
    (retrain,) = [r for r in project.rounds.rounds() if r.id > first_round]
    assert retrain.method == "retrain" and retrain.metrics["stage"] == "incremental"
    assert retrain.metrics["base_round"] == first_round
    assert retrain.params["sam_round"] == first_round    # SAM with EP-SAM's decoder
    assert retrain.metrics["warm_start_round"] is None     # nothing to continue yet
    assert retrain.metrics["reviewed_items"] == sorted([accepted.id, corrected.id])
    assert set(retrain.metrics["seconds"]) == {"embeddings", "training", "pseudo-labels"}
    assert retrain.metrics["decoder_losses"] == []         # SAM as pretrained by default
    states = project.labels.states()
    assert (states[accepted.id], states[corrected.id], states[rejected.id]) == (
        LabelState.ACCEPTED, LabelState.CORRECTED, LabelState.REJECTED)
    assert np.array_equal(project.labels.final_mask(corrected.id), mask)
    assert np.array_equal(project.labels.final_mask(accepted.id), accepted_mask)
    assert {i: project.labels.latest_proposal(i).id for i in reviewed_proposals} == \
        reviewed_proposals
    unreviewed = [e.item for e in review.queue.entries if e.state is LabelState.PROPOSED]
    assert unreviewed and all(project.labels.latest_proposal(i.id).round_id == retrain.id
                              for i in unreviewed)
    # a second Retrain continues the first one's head, and trains SAM's decoder when asked
    choice = MethodChoice.of("epsam", cam_source="adl", epochs=6, rounds=1, decoder_epochs=1)
    choice.options["retrain"] = {"decoder-epochs": 1}
    run_to_end(training, qtbot, choice)
    second = project.rounds.rounds()[-1]
    assert second.metrics["warm_start_round"] == retrain.id
    assert len(second.metrics["decoder_losses"]) == 1
    # From scratch: the method itself again, with the reviewed masks
    training.scratch_box.setChecked(True)
    assert training.start_button.text() == "Run EP-SAM from scratch with 2 reviewed masks"
    assert not training.retrains()

    # export: the two reviewed masks, as the person left them
    report = review.export(tmp_path / "export")
    assert report is not None and report.items == 2
    source = Path(project.catalog.source(corrected.source_id).path)
    (path,) = [p for p in report.files if p.name.startswith(split_suffix(source.name)[0])]
    image = read_image(path)
    plane = image.slice(corrected.display_index) if image.is_volume else image.data
    assert np.array_equal(np.asarray(plane) > 0, mask > 0)
    with Project.open(root, read_only=True) as reopened:   # a second reader sees it all
        assert reopened.labels.state_counts()["corrected"] == 1
    tagging.close_project()
