"""Retrain from reviewed masks on the bundled sample (real LiteMedSAM, cached embeddings)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import napari_weaksam.project.project as project_module
from napari_weaksam.cli import main
from napari_weaksam.method_settings import ReviewRetrainSettings
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.prediction import predict
from napari_weaksam.methods.registry import get_method
from napari_weaksam.metrics import dice
from napari_weaksam.project import LabelState, Project, ProjectError
from napari_weaksam.project.importer import import_images
from napari_weaksam.project.restore import restore_round
from napari_weaksam.retrain.from_reviews import (
    INCREMENTAL,
    base_round,
    retrain_from_reviews,
    supervision,
)
from napari_weaksam.sample import sample_dir

FAST = ReviewRetrainSettings(epochs=2, warm_epochs=1)


def reference(project: Project, item) -> np.ndarray | None:
    """The H&E patch's reference mask (None for other items)."""
    path = sample_dir() / "masks" / Path(project.catalog.source(item.source_id).path).name
    return iio.imread(path) > 0 if path.suffix == ".png" and path.exists() else None


def correct(project: Project, count: int) -> list[int]:
    """The first ``count`` adenocarcinoma patches corrected with their reference masks."""
    done = []
    for item in project.catalog.items():
        mask = reference(project, item)
        if mask is not None and mask.any() and len(done) < count:
            project.labels.review(item.id, LabelState.CORRECTED, mask.astype(np.uint8))
            done.append(item.id)
    return done


@pytest.fixture(scope="module")
def retrained(tmp_path_factory, litemedsam, embedded_sample, copy_project):
    """The sample with two corrected patches, retrained twice; files read by the runs are
    recorded (only the reviewer above reads the reference masks)."""
    root = copy_project(embedded_sample, tmp_path_factory.mktemp("rr") / "sample")
    read: list[str] = []
    original = project_module.read_image
    with Project.open(root) as project:
        corrected = correct(project, 2)
        project_module.read_image = lambda p, **kw: read.append(str(p)) or original(p, **kw)
        try:
            first = retrain_from_reviews(RunContext(project, litemedsam), FAST)
            second = retrain_from_reviews(RunContext(project, litemedsam), FAST)
        finally:
            project_module.read_image = original
    return root, corrected, first, second, read


def test_unreviewed_items_get_proposals_and_the_reviewed_keep_their_masks(retrained):
    root, corrected, first, _second, read = retrained
    with Project.open(root, read_only=True) as project:
        items = project.catalog.items()
        assert first.proposals == len(items) - 2 and first.reviewed == 2
        tags = project.catalog.all_tags()
        for item in items:
            proposal = project.labels.latest_proposal(item.id)
            if item.id in corrected:
                # Retrain never proposes for a reviewed item
                assert proposal is None or proposal.method != "retrain"
                assert np.array_equal(project.labels.final_mask(item.id) > 0,
                                      reference(project, item))
                continue
            assert proposal.method == "retrain" and proposal.params["reviewed_items"] == \
                sorted(corrected)
            if tags.get(item.id) == set():   # tagged no finding: nothing, sure of it
                assert not project.labels.proposal_mask(proposal).any()
    masks = str(sample_dir() / "masks")
    assert read and not any(path.startswith(masks) for path in read)


def test_each_retrain_is_a_round_that_says_what_it_learnt_from(retrained):
    root, corrected, first, second, _read = retrained
    with Project.open(root, read_only=True) as project:
        rounds = {r.id: r for r in project.rounds.rounds()}
    one, two = rounds[first.round_id], rounds[second.round_id]
    assert one.metrics["stage"] == two.metrics["stage"] == INCREMENTAL
    assert one.metrics["base_round"] is None and one.metrics["warm_start_round"] is None
    assert two.metrics["base_round"] == two.metrics["warm_start_round"] == first.round_id
    assert two.metrics["reviewed_items"] == sorted(corrected)
    assert len(one.metrics["losses"]) == 2 and len(two.metrics["losses"]) == 1   # warm: fewer
    assert set(two.metrics["seconds"]) == {"embeddings", "training", "pseudo-labels"}


def test_the_corrected_patches_are_learnt(retrained, litemedsam):
    """The head's own masks on the patches it learnt from match them (a floor, not a target:
    two masks and three epochs)."""
    root, corrected, _first, second, _read = retrained
    from napari_weaksam.retrain.review_predictor import ReviewRetrainPredictor

    with Project.open(root, read_only=True) as project:
        round_ = next(r for r in project.rounds.rounds() if r.id == second.round_id)
        predictor = ReviewRetrainPredictor(project, litemedsam, round_)
        items = [project.catalog.item(i) for i in corrected]
        scores = [dice(label > 0, reference(project, item))
                  for item, label, _c in predictor.segment(project, items)]
    assert min(scores) > 0.5, scores


def test_supervision_from_masks_and_tags_only(tmp_path, litemedsam, sample_copy):
    with Project.open(sample_copy()) as project:
        corrected = correct(project, 1)
        items, classes = project.catalog.items(), project.catalog.classes()
        cache = project.embedding_cache(litemedsam)
        embeddings = [cache.get(project.item_image(item)) for item in items]
        data = supervision(project, items, classes, embeddings, 256)
        tags = project.catalog.all_tags()
    index = {item.id: i for i, item in enumerate(items)}
    reviewed = index[corrected[0]]
    assert data.reviewed.nonzero()[:, 0].tolist() == [reviewed]
    assert data.pixel_weight[reviewed, 0] == 1 and data.targets[reviewed].sum() > 0
    for item in items:
        i = index[item.id]
        if i == reviewed:
            continue
        assert data.targets[i].sum() == 0     # nothing but a review sets a pixel target
        if item.id not in tags:
            assert data.pixel_weight[i, 0] == data.present[i, 0] == 0
        else:
            assert data.present[i, 0] == float(bool(tags[item.id]))
            assert data.pixel_weight[i, 0] == float(not tags[item.id])   # no proposals here
    pool = data.pool(0.25).tolist()
    assert pool.count(reviewed) > 1 and abs(pool.count(reviewed) / len(pool) - 0.25) < 0.1


def test_a_methods_proposals_are_targets_where_tagged_weighted_by_trust(litemedsam,
                                                                        sample_copy):
    with Project.open(sample_copy()) as project:
        corrected = correct(project, 1)
        items, classes = project.catalog.items(), project.catalog.classes()
        cache = project.embedding_cache(litemedsam)
        embeddings = [cache.get(project.item_image(item)) for item in items]
        tags = project.catalog.all_tags()
        tagged = [i for i, item in enumerate(items)
                  if tags.get(item.id) and item.id not in corrected]
        square = {}
        for i in [*tagged, *(i for i, it in enumerate(items) if it.id in corrected)]:
            label = np.zeros((items[i].height, items[i].width), np.uint8)
            label[: items[i].height // 2, : items[i].width // 2] = 1   # the method's answer
            square[items[i].id] = label
        fixed = supervision(project, items, classes, embeddings, 256, square,
                            ReviewRetrainSettings(pseudo_weight=0.5))
        reviews = supervision(project, items, classes, embeddings, 256, square,
                              ReviewRetrainSettings(pseudo_weight=0.5, pseudo_trust="reviews"))
        truth = project.labels.final_mask(corrected[0]) > 0
    i = tagged[0]
    assert fixed.pixel_weight[i, 0] == 0.5 and fixed.targets[i, 0].sum() > 0
    assert torch.equal(fixed.targets[i], fixed.prior[i])   # the answer is the target
    said = square[corrected[0]] > 0
    agreement = 2 * (truth & said).sum() / (truth.sum() + said.sum())
    assert reviews.trust[0] == pytest.approx(0.5 * agreement)
    assert reviews.pixel_weight[i, 0] == pytest.approx(0.5 * agreement)


def test_cli_retrain_and_predict_with_its_round(retrained, tmp_path, copy_project, capsys,
                                               unseen_patches, litemedsam):
    root = copy_project(retrained[0], tmp_path / "p")
    assert main(["retrain", str(root), "--epochs", "1", "--warm-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "learnt from 2 reviewed items (continued round" in out and "\nFew masks" in out
    folder, names = unseen_patches
    with Project.open(root) as project:
        latest = project.rounds.rounds()[-1]
        import_images(project, [folder])
        new = [i for i in project.catalog.items() if i.name.startswith("unseen")]
        report = predict(RunContext(project, litemedsam), latest, new)
        assert report.items == len(names) == len(new)
        assert base_round(project).id == latest.id   # a round of new images is not followed
        labels = [project.labels.proposal_mask(project.labels.latest_proposal(i.id))
                  for i in new]
    assert all(label.shape == (i.height, i.width) for label, i in zip(labels, new, strict=True))
    with Project.open(root) as project:
        # going back to a round starts a new head; a review that is gone teaches nothing
        restore_round(project, latest.id)
        again = retrain_from_reviews(RunContext(project, litemedsam), FAST)
        assert again.warm_start_round is None and again.base_round > latest.id
        for item_id, state in project.labels.states().items():
            if state is LabelState.CORRECTED:
                project.labels.clear_review(item_id)
        with pytest.raises(ProjectError, match="nothing reviewed"):
            retrain_from_reviews(RunContext(project, litemedsam), FAST)


def test_retrain_is_not_a_method_to_start_from_tags(capsys):
    with pytest.raises(SystemExit):
        main(["run", "somewhere", "--method", "retrain"])
    assert "invalid choice: 'retrain'" in capsys.readouterr().err


def test_a_retrain_that_trains_sam_keeps_it_with_the_round_and_leaves_sam_pretrained(
        retrained, tmp_path, copy_project, unseen_patches, litemedsam):
    root = copy_project(retrained[0], tmp_path / "p")
    pretrained = litemedsam.decoder_state()
    with Project.open(root) as project:
        settings = ReviewRetrainSettings(epochs=1, warm_epochs=1, decoder_epochs=2)
        report = retrain_from_reviews(RunContext(project, litemedsam), settings)
        round_ = project.rounds.rounds()[-1]
        assert round_.id == report.round_id and len(round_.metrics["decoder_losses"]) == 2
        assert "decoder" in round_.metrics["seconds"]
        checkpoint = project.rounds.checkpoint(round_.checkpoint_id)
        trained = torch.load(checkpoint.path, weights_only=True)["sam"]
        assert "SAM decoder" in checkpoint.description
        assert any(not torch.equal(trained[k], pretrained[k]) for k in pretrained)
        assert all(torch.equal(v, pretrained[k]) for k, v in litemedsam.decoder_state().items())
        # a new image is segmented with the SAM the round trained, and SAM is pretrained after
        folder, _names = unseen_patches
        import_images(project, [folder])
        new = [i for i in project.catalog.items() if i.name.startswith("unseen")]
        predictor = get_method("retrain").make_predictor(project, litemedsam, round_)
        with predictor.adapted():
            answers = predictor.segment(project, new)
            next(answers)
            assert all(torch.equal(litemedsam.decoder_state()[k], trained[k]) for k in trained)
            assert len(list(answers)) == len(new) - 1
    assert all(torch.equal(v, pretrained[k]) for k, v in litemedsam.decoder_state().items())


def test_retrain_and_predict_over_weakmedsams_head_on_embeddings(tmp_path, litemedsam,
                                                                 sample_copy, unseen_patches):
    """The embedding head (WeakMedSAM's CAM input on stained tissue) is rebuilt from its
    checkpoint: Retrain on top of its round, and its round segments new images."""
    from napari_weaksam.method_settings import WeakMedSamSettings
    from napari_weaksam.methods.prediction import choose_round, import_for_prediction
    from napari_weaksam.methods.weakmedsam import run_weakmedsam

    settings = WeakMedSamSettings(cam_input="embedding", epochs=1, min_steps=20, subclasses=2,
                                  ensemble=1, save_maps=False, mask_prompts="none")
    with Project.open(sample_copy()) as project:
        method = run_weakmedsam(RunContext(project, litemedsam), settings)
        correct(project, 1)
        quick = ReviewRetrainSettings(epochs=1, prompts="none")   # the head's own masks
        report = retrain_from_reviews(RunContext(project, litemedsam), quick)
        round_ = project.rounds.rounds()[-1]
        assert round_.id == report.round_id and round_.params["sam_round"] == method.round_id
        folder, names = unseen_patches
        items, _ = import_for_prediction(project, [folder])
        result = predict(RunContext(project, litemedsam), choose_round(project, method.round_id),
                         items)
        assert result.from_round == method.round_id and result.items == len(names)
