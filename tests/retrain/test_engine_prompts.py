"""The retraining engine with each prompt strategy, end to end on a tiny project of non-square
images (real LiteMedSAM, real decoder training); the default stays EP-SAM's PEPM points."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from scipy import ndimage

import napari_weaksam.retrain.engine as engine_module
from napari_weaksam.method_settings import PROMPT_STRATEGIES
from napari_weaksam.metrics import dice
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.prompts import activation_points
from napari_weaksam.retrain import (
    Candidate,
    DecoderTraining,
    EngineInputs,
    RetrainingEngine,
    RetrainSettings,
)

#: (row, column, side) of the squares in each 160 × 256 item
SCENES = [[(60, 150, 50)], [(20, 30, 40), (90, 170, 45)], [(50, 100, 60)], [(30, 180, 40)]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, litemedsam):
    """A four-item project; per item its objects and a CAM-like map (the objects blurred)."""
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    objects = []
    for index, squares in enumerate(SCENES):
        image = 20 + 10 * rng.random((160, 256))
        found = np.zeros(image.shape, dtype=bool)
        for row, column, side in squares:
            found[row:row + side, column:column + side] = True
        image[found] = 150 + 60 * rng.random(int(found.sum()))
        iio.imwrite(folder / f"scene{index}.png", image.astype(np.uint8))
        objects.append(found)
    root = folder / "project"
    with Project.create(root) as project:
        import_images(project, sorted(folder.glob("*.png")), copy=True)
        items = project.catalog.items()
        for _ in project.embedding_cache(litemedsam).fill(
                lambda i: project.item_image(items[i]), range(len(items))):
            pass
    return root, objects


def _inputs(project: Project, backbone, objects: list[np.ndarray]) -> EngineInputs:
    items = project.catalog.items()
    cache = project.embedding_cache(backbone)
    candidates = []
    for item, found in zip(items, objects, strict=True):
        activation = ndimage.gaussian_filter(found.astype(np.float32), 6)
        activation /= activation.max()
        candidates.append(Candidate(item, 0, cache.embed(project.item_image(item)), activation,
                                    activation > 0.5, True, 0.9))
    return EngineInputs(project, backbone, items, [1], candidates, "test", {},
                        backbone.decoder_state())


def _settings(prompts: str, rounds: int) -> RetrainSettings:
    return RetrainSettings(rounds=rounds, prompts=prompts, prompt_points=10, ids_threshold=0.5,
                           decoder=DecoderTraining(epochs=1, batch_size=2, points=10))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", PROMPT_STRATEGIES)
def test_every_strategy_runs_the_rounds_and_trains_on_its_own_prompts(
        tmp_path, copy_project, litemedsam, tiny, strategy):
    rounds = 1 if strategy == "boxes" else 0      # a round more for the boxes only: time
    source, objects = tiny
    root = copy_project(source, tmp_path / "project")
    strategies_trained = []
    original = engine_module.train_decoder

    def recording(backbone, samples, settings, **options):
        strategies_trained.append(options["strategy"])
        return original(backbone, samples, settings, **options)

    engine_module.train_decoder = recording
    try:
        with Project.open(root) as project:
            inputs = _inputs(project, litemedsam, objects)
            stages = RetrainingEngine(inputs, _settings(strategy, rounds)).run(zero_shot=True)
            assert [s.name for s in stages] == ["zero-shot", "preliminary",
                                                *[f"round {n}" for n in range(1, rounds + 1)]]
            for stage in stages:
                stored = project.db.scalar("SELECT COUNT(*) FROM proposals WHERE round_id = ?",
                                           (stage.round_id,))
                assert stored == len(inputs.items)
            last = {item.id: project.labels.latest_proposal(item.id) for item in inputs.items}
            assert {p.round_id for p in last.values()} == {stages[-1].round_id}
            assert all(r.status == "done" for r in project.rounds.rounds())
    finally:
        engine_module.train_decoder = original
        litemedsam.load_decoder_state(inputs.pretrained)
    assert strategies_trained == [strategy] * (1 + rounds)
    zero_shot = [dice(m, o) for m, o in zip(stages[0].masks, objects, strict=True)]
    if strategy != "points":         # LiteMedSAM answers boxes; its zero-shot points miss
        assert np.mean(zero_shot) > 0.8, zero_shot
    assert all(m.shape == o.shape for m, o in zip(stages[-1].masks, objects, strict=True))


def test_the_default_generates_with_pepm_points_exactly_as_before(tmp_path, copy_project,
                                                                  litemedsam, tiny):
    source, objects = tiny
    root = copy_project(source, tmp_path / "project")
    with Project.open(root) as project:
        inputs = _inputs(project, litemedsam, objects)
        settings = RetrainSettings(prompt_points=10, seed=5)
        assert settings.prompts == "points" and settings.min_prompt_iou == 0
        masks, _scores = RetrainingEngine(inputs, settings).generate("zero-shot")
    rng = np.random.default_rng(5)
    for candidate, mask in zip(inputs.candidates, masks, strict=True):
        points = activation_points(candidate.activation, candidate.initial, 10, rng)
        with torch.inference_mode():
            expected = litemedsam.decode(candidate.embedding, points=points[None],
                                         point_labels=np.ones((1, len(points)), np.int64))
        assert np.array_equal(mask, expected.masks()[0, 0])


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="prompts"):
        RetrainSettings(prompts="scribbles")
    with pytest.raises(ValueError, match="min_prompt_iou"):
        RetrainSettings(min_prompt_iou=1.5)


def test_the_selection_rule_scores_each_mask_and_is_recorded(tmp_path, copy_project, litemedsam,
                                                             tiny):
    from napari_weaksam.retrain.selection import selection_score

    source, objects = tiny
    root = copy_project(source, tmp_path / "project")
    settings = RetrainSettings(prompts="boxes", selection="agreement", rounds=0,
                               decoder=DecoderTraining(epochs=1, batch_size=2, points=10))
    with Project.open(root) as project:
        inputs = _inputs(project, litemedsam, objects)
        try:
            stage = RetrainingEngine(inputs, settings).preliminary()
            # scored by the stage's own decoder, still loaded
            expected = [selection_score("agreement", litemedsam, candidate.embedding,
                                        candidate.initial, mask)
                        for candidate, mask in zip(inputs.candidates, stage.masks, strict=True)]
        finally:
            litemedsam.load_decoder_state(inputs.pretrained)
        metrics = project.rounds.rounds()[-1].metrics
    assert stage.scores == expected
    assert metrics["selection"] == "agreement" and "agreement_bar" in metrics
    assert metrics["kept"] == len(stage.kept)


def test_a_carried_round_trains_on_every_items_latest_kept_mask(tmp_path, copy_project,
                                                                litemedsam, tiny):
    from napari_weaksam.project import ProjectError

    source, objects = tiny
    root = copy_project(source, tmp_path / "project")
    keep_none = dict(prompts="boxes", rounds=1, ids_threshold=1.0, min_kept=0.0,
                     decoder=DecoderTraining(epochs=1, batch_size=2, points=10))
    with Project.open(root) as project:
        inputs = _inputs(project, litemedsam, objects)
        try:
            selected = RetrainingEngine(inputs, RetrainSettings(**keep_none,
                                                                round_targets="selected"))
            preliminary = selected.preliminary()
            assert preliminary.kept == []            # an IDS bar of 1 keeps no SAM mask
            with pytest.raises(ProjectError, match="nothing to train"):
                selected.next_round(preliminary, 1)
            carried = RetrainingEngine(inputs, RetrainSettings(**keep_none))   # the default
            assert carried.settings.round_targets == "carried"
            carried.next_round(carried.preliminary(), 1)    # every initial mask, carried over
        finally:
            litemedsam.load_decoder_state(inputs.pretrained)
        metrics = project.rounds.rounds()[-1].metrics
    assert metrics["stage"] == "round 1"
    assert metrics["pseudo-label targets"] == len(inputs.candidates)
    assert [kind for _mask, kind in carried.targets] == ["initial"] * len(inputs.candidates)
