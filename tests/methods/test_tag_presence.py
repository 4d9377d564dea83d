"""A person's tag decides which classes a method segments; the classifier gates untagged items."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.tag_presence import PRESENCE_RULE, presence, tagged_presence
from napari_weaksam.methods.weakmedsam import (
    WeakMedSamSettings,
    label_item,
    run_weakmedsam,
    train_on_tags,
)
from napari_weaksam.project import ImageClass, Item, Project

# gate 0: the classifier lets every class through, so only the tags can keep an item empty
OPEN_GATE = WeakMedSamSettings(epochs=1, min_steps=30, subclasses=2, ensemble=1, gate=0.0,
                               save_maps=False)
CLASSES = [ImageClass(7, "tumour", 1, "#ff0000"), ImageClass(9, "cyst", 2, "#00ff00")]


def _item(item_id: int) -> Item:
    return Item(item_id, 1, f"item {item_id}", None, 0, 8, 8, 1, tagged=True)


def test_a_tag_overrides_the_classifier_both_ways():
    tags = {1: {7}}                       # item 1: tumour present, cyst absent
    tagged = tagged_presence(_item(1), tags, CLASSES)
    np.testing.assert_array_equal(tagged, [True, False])
    confident = presence(tagged, np.array([0.01, 0.99]), gate=0.5)
    np.testing.assert_array_equal(confident, [True, False])


def test_no_finding_makes_every_class_absent():
    tagged = tagged_presence(_item(2), {2: set()}, CLASSES)
    np.testing.assert_array_equal(presence(tagged, np.array([0.99, 0.99]), 0.5), [False, False])


@pytest.mark.parametrize(("probabilities", "gate", "expected"), [
    ([0.99, 0.01], 0.5, [True, False]),
    ([0.5, 0.49], 0.5, [True, False]),
    ([0.2, 0.3], 0.0, [True, True]),
])
def test_an_untagged_item_follows_the_gate(probabilities, gate, expected):
    tagged = tagged_presence(_item(3), {1: {7}}, CLASSES)
    assert tagged is None
    np.testing.assert_array_equal(presence(tagged, np.array(probabilities), gate), expected)


@pytest.fixture(scope="module")
def open_gate_run(tmp_path_factory, litemedsam, embedded_sample, copy_project):
    root = copy_project(embedded_sample, tmp_path_factory.mktemp("tp") / "sample")
    with Project.open(root) as project:
        report = run_weakmedsam(RunContext(project, litemedsam), OPEN_GATE)
    return root, report


def test_weakmedsam_gives_no_finding_items_no_pixels(open_gate_run):
    root, report = open_gate_run
    with Project.open(root, read_only=True) as project:
        tags = project.catalog.all_tags()
        negatives = [item for item in project.catalog.items() if tags.get(item.id) == set()]
        assert len(negatives) >= 5
        for item in negatives:
            proposal = project.labels.latest_proposal(item.id)
            assert proposal.round_id == report.round_id
            assert not project.labels.proposal_mask(proposal).any(), item.name
            assert proposal.confidence == 1.0     # the person said so
            assert proposal.params["presence"] == PRESENCE_RULE and proposal.params["tagged"]
        assert project.rounds.rounds()[-1].params["presence"] == PRESENCE_RULE
    assert report.positives > 0


def test_a_tagged_class_is_walked_whatever_its_probability(embedded_sample, litemedsam):
    with Project.open(embedded_sample, read_only=True) as project:
        items = project.catalog.items()[:6]
        images = [project.item_image(item) for item in items]
        cache = project.embedding_cache(litemedsam)
        embeddings = [cache.get(image) for image in images]
        tags = project.catalog.all_tags()
    labels = np.array([[1.0 if tags[i.id] else 0.0] for i in items], dtype=np.float32)
    models, _ = train_on_tags(images.__getitem__, embeddings, list(range(6)), labels, OPEN_GATE,
                              litemedsam, lambda _p: None, None)
    closed = dataclasses.replace(OPEN_GATE, gate=1.0)   # no probability passes this gate
    args = (litemedsam, models, images[0], embeddings[0], [1])
    untagged_open = label_item(*args, OPEN_GATE)
    assert untagged_open.label.any()
    assert not label_item(*args, closed).label.any()
    tagged_present = label_item(*args, closed, tagged=np.array([True]))
    np.testing.assert_array_equal(tagged_present.label, untagged_open.label)
    tagged_absent = label_item(*args, OPEN_GATE, tagged=np.array([False]))
    assert not tagged_absent.label.any() and tagged_absent.confidence == 1.0
