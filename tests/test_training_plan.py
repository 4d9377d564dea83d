"""What a run will really do, from its settings: epochs with step floors, the stages it reports,
the summary the Train dock shows before Start, and the time left through planned stages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_weaksam.cam.adl_training import train_adl_classifier
from napari_weaksam.cam.training import ClassifierTraining, train_classifier
from napari_weaksam.method_settings import (
    AdlTraining,
    DecoderTraining,
    EpSamSettings,
    RetrainSettings,
    SamMixSettings,
    TagClassifierSettings,
    WeakMedSamSettings,
)
from napari_weaksam.progress import Progress
from napari_weaksam.training_plan import (
    FEW_REVIEWS,
    LOADING,
    PlannedStage,
    ProjectSize,
    StageClock,
    few_reviews_note,
    floored_epochs,
    plan_text,
    planned_stages,
)


class TinyClassifier(nn.Module):
    """Parent and sub-class logits from the mean of each input channel."""

    def __init__(self, channels: int, parents: int, children: int) -> None:
        super().__init__()
        self.parent = nn.Linear(channels, parents)
        self.child = nn.Linear(channels, children)

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = batch.mean(dim=(-1, -2))
        return self.parent(pooled), self.child(pooled)


@pytest.mark.parametrize("samples, epochs, min_steps", [(33, 3, 150), (33, 60, 150), (5, 2, 7)])
def test_floored_epochs_are_what_the_classifier_really_trains(samples, epochs, min_steps):
    rng = np.random.default_rng(0)
    inputs = torch.rand(samples, 2, 4, 4)
    labels = (rng.random((samples, 1)) < 0.5).astype(np.float32)
    children = (rng.random((samples, 2)) < 0.5).astype(np.float32)
    settings = ClassifierTraining(epochs=epochs, min_steps=min_steps, batch_size=16)
    seen: list[int] = []
    train_classifier(TinyClassifier(2, 1, 2), inputs, labels, children, settings,
                     on_epoch=lambda epoch, total, _loss: seen.append(total))
    expected = floored_epochs(epochs, min_steps, settings.batch_size, samples)
    assert len(seen) == expected and set(seen) == {expected}


def test_the_adl_classifier_trains_the_epochs_asked():
    settings = AdlTraining(epochs=2, input_size=32, batch_size=4)
    labels = np.array([[1.0], [0.0], [1.0], [0.0]], dtype=np.float32)
    seen: list[int] = []
    train_adl_classifier(torch.rand(4, 3, 32, 32), labels, settings,
                         on_epoch=lambda epoch, _total, _loss: seen.append(epoch))
    assert seen == [1, 2]


def test_weakmedsam_says_its_ensemble_and_step_floor():
    settings = WeakMedSamSettings(epochs=3, min_steps=150, ensemble=2, batch_size=16)
    assert plan_text(settings, ProjectSize(items=35, tagged=35)) == (
        "2 classifiers × 50 epochs on 35 tagged images (3 asked; ≥ 150 steps each)\n"
        "then pseudo-labels for 35 images")
    enough = WeakMedSamSettings(epochs=80, min_steps=150, ensemble=1, batch_size=16)
    assert plan_text(enough, ProjectSize(items=35, tagged=35)).startswith(
        "1 classifier × 80 epochs on 35 tagged images\n")
    assert plan_text(settings, None) == ("2 classifiers × ≥ 3 epochs (≥ 150 steps each)\n"
                                         "then pseudo-labels for every image")


def test_epsam_says_its_classifier_and_decoder_rounds():
    settings = EpSamSettings(classifier=AdlTraining(epochs=15),
                             engine=RetrainSettings(rounds=3, decoder=DecoderTraining(epochs=20)))
    assert plan_text(settings, ProjectSize(items=35, tagged=30)) == (
        "ADL classifier: 15 epochs on 30 tagged images\n"
        "then preliminary + 3 rounds × 20 decoder epochs, each labelling 35 images "
        "(rounds ≥ the preliminary's steps)")
    alone = EpSamSettings(engine=RetrainSettings(rounds=0, decoder=DecoderTraining(epochs=4)))
    assert plan_text(alone, ProjectSize(items=1, tagged=1)).endswith(
        "then preliminary only, 4 decoder epochs, each labelling 1 image")
    embedding = EpSamSettings(cam_source="weakmedsam",
                              embedding_classifier=WeakMedSamSettings(epochs=3, ensemble=1))
    assert plan_text(embedding, ProjectSize(items=35, tagged=35)).startswith(
        "1 classifier × 50 epochs on 35 tagged images (3 asked;")


def test_sammix_says_what_sam_learns_from():
    settings = SamMixSettings(classifier=TagClassifierSettings(trunk="resnet18", epochs=20,
                                                               min_steps=0),
                              seg_epochs=10)
    assert plan_text(settings, ProjectSize(items=40, tagged=30, reviewed=4)) == (
        "Tag classifier (ResNet-18): 20 epochs on 30 tagged images, with SAM's decoder on 4 "
        "reviewed masks × 10\nthen pseudo-labels for 40 images")
    assert plan_text(settings, ProjectSize(items=40, tagged=30)) == (
        "Tag classifier (ResNet-18): 20 epochs on 30 tagged images; no reviewed masks yet, so SAM "
        "answers untrained\nthen pseudo-labels for 40 images")
    local = SamMixSettings(classifier=TagClassifierSettings(trunk="local"))
    assert plan_text(local, ProjectSize(40, 30)).startswith("Tag classifier (local CNN):")
    lora = SamMixSettings(scope="decoder+lora")
    assert "decoder + LoRA adapters" in plan_text(lora, ProjectSize(40, 30, 1))
    assert "encodes every image again afterwards" in plan_text(lora, ProjectSize(40, 30, 1))
    # the adapted encoder encodes after training, into a cache of its own
    assert [s.name for s in planned_stages(lora)] == [
        LOADING, "classifier: images", "training", "embedding", "pseudo-labels"]
    assert [s.name for s in planned_stages(settings)] == [
        LOADING, "embedding", "classifier: images", "training", "pseudo-labels"]


def test_planned_stages_follow_the_settings():
    names = [s.name for s in planned_stages(EpSamSettings(engine=RetrainSettings(rounds=2)))]
    assert names == [LOADING, "embedding", "classifier: images", "classifier: training",
                     "initial masks", "preliminary: training", "preliminary: pseudo-labels",
                     "round 1: training", "round 1: pseudo-labels", "round 2: training",
                     "round 2: pseudo-labels"]
    zero_shot = planned_stages(EpSamSettings(zero_shot=True, engine=RetrainSettings(rounds=0)))
    assert [s.name for s in zero_shot][-3:] == ["zero-shot: pseudo-labels",
                                                "preliminary: training",
                                                "preliminary: pseudo-labels"]
    assert [s.name for s in planned_stages(WeakMedSamSettings())] == [
        LOADING, "embedding", "training: images", "training", "pseudo-labels",
        "embedding: for Retrain"]
    embedding = planned_stages(WeakMedSamSettings(cam_input="embedding", ensemble=3))
    assert [(s.name, s.members) for s in embedding][2:] == [("training", 3),
                                                           ("pseudo-labels", 1)]


def test_each_ensemble_member_is_its_own_loss_curve():
    stage = PlannedStage("training", members=2, series="classifier")
    names = [stage.series_name(Progress("training", done, 100, loss=1.0))
             for done in (1, 50, 51, 100)]
    assert names == ["classifier 1", "classifier 1", "classifier 2", "classifier 2"]
    assert PlannedStage("round 1: training").series_name(
        Progress("round 1: training", 3, 4)) == "round 1"


def test_the_time_left_is_the_whole_runs_once_every_later_stage_can_be_timed():
    plan = planned_stages(EpSamSettings(engine=RetrainSettings(rounds=1)))[-4:]
    clock = StageClock(plan)
    clock.seen(Progress("preliminary: training", 1, 4), now=0)
    clock.seen(Progress("preliminary: training", 2, 4), now=10)
    # the preliminary's pseudo-labels have no earlier stage to be timed by
    assert clock.position() == (1, 4)
    assert clock.seconds_left(Progress("preliminary: training", 2, 4), now=10) == (10, False)
    clock.seen(Progress("preliminary: training", 4, 4), now=20)
    clock.seen(Progress("preliminary: pseudo-labels", 1, 30), now=22)
    clock.seen(Progress("preliminary: pseudo-labels", 30, 30), now=80)   # 60 s from 20
    clock.seen(Progress("round 1: training", 1, 4), now=100)             # begun at 80
    report = Progress("round 1: training", 2, 4)
    clock.seen(report, now=120)                                          # 20 s an epoch
    assert clock.position() == (3, 4)
    assert clock.seconds_left(report, now=120) == (40 + 60, True)
    assert clock.line(report, now=120) == ("stage 3 of 4 · round 1: training · 2/4 · "
                                           "about 2 min left (total)")


def test_a_stage_not_planned_is_shown_under_the_current_one():
    clock = StageClock(planned_stages(EpSamSettings(engine=RetrainSettings(rounds=0))))
    clock.seen(Progress("preliminary: pseudo-labels", 30, 30), now=0)
    note = Progress("preliminary: IDS filter", 3, 30)
    clock.seen(note, now=1)
    assert clock.unplanned == {"preliminary: IDS filter"}
    assert clock.line(note, now=1) == "stage 7 of 7 · preliminary: IDS filter · 3/30"


def test_retrain_says_what_it_learns_from_and_what_it_leaves_alone():
    from napari_weaksam.method_settings import ReviewRetrainSettings

    settings = ReviewRetrainSettings(epochs=4, warm_epochs=2)
    assert plan_text(settings, ProjectSize(items=40, tagged=30, reviewed=3)) == (
        few_reviews_note(3) + "\nRetrain: a mask head on cached embeddings learns from 3 "
        "reviewed masks, the tags and "
        "the last round's proposals (2 epochs when it continues the last Retrain's head, else "
        "4)\nthen new proposals for 37 unreviewed images; reviewed images stay as they are")
    assert few_reviews_note(3).startswith("Few masks") and few_reviews_note(FEW_REVIEWS) == ""
    assert plan_text(settings, ProjectSize(items=40, tagged=30, reviewed=FEW_REVIEWS)
                     ).startswith("Retrain: a mask head")
    assert [s.name for s in planned_stages(settings)] == [
        LOADING, "embedding", "mask head", "pseudo-labels"]


def test_the_unet_says_its_epochs_floor_and_warm_start():
    from napari_weaksam.method_settings import SegNetSettings

    settings = SegNetSettings(epochs=8, min_steps=200, warm_epochs=2)
    assert plan_text(settings, ProjectSize(items=40, tagged=30, reviewed=3)) == (
        "Segmentation network: a U-Net (128 px) learns from the last round's proposals, your "
        "reviewed masks and the tags (8 epochs, ≥ 200 steps; 2 when it continues the last "
        "U-Net)\nthen new proposals for 37 unreviewed images; reviewed images stay as they are")
    alone = SegNetSettings(epochs=1, min_steps=0, warm_start=False, source_round=3)
    assert "from round 3's proposals" in plan_text(alone, None)
    assert "the tags (1 epoch)\n" in plan_text(alone, None)
