"""The methods napari-weaksam ships (see ``../shared`` METHODS.md for what each one does)."""

from __future__ import annotations

from .. import training_plan
from ..method_settings import (
    EpSamSettings,
    ReviewRetrainSettings,
    SamMixSettings,
    SegNetSettings,
    WeakMedSamSettings,
)
from .registry import Method, register

EPSAM = register(Method(
    name="epsam",
    title="EP-SAM",
    summary="CAM point prompts; the decoder retrains on pseudo-labels and your corrections.",
    settings_type=EpSamSettings,
    runner="napari_weaksam.methods.epsam:run_epsam",
    predictor="napari_weaksam.methods.epsam:EpSamPredictor",
    stages=training_plan.epsam_stages,
    plan_text=training_plan.epsam_plan,
    dock_options=("epochs", "rounds", "decoder-epochs"),
    learns_from_reviews=True,
))

WEAKMEDSAM = register(Method(
    name="weakmedsam",
    title="WeakMedSAM",
    summary="CAM + SAM affinity + random walk, in one pass.",
    settings_type=WeakMedSamSettings,
    runner="napari_weaksam.methods.weakmedsam:run_weakmedsam",
    predictor="napari_weaksam.methods.weakmedsam:WeakMedSamPredictor",
    stages=training_plan.weakmedsam_stages,
    plan_text=training_plan.weakmedsam_plan,
    dock_options=("epochs",),
))

SAMMIX = register(Method(
    name="sammix",
    title="SAM-Mix",
    summary="A tag classifier's GradCAM box + mask prompt SAM; SAM learns from your masks.",
    settings_type=SamMixSettings,
    runner="napari_weaksam.methods.sammix:run_sammix",
    stages=training_plan.sammix_stages,
    plan_text=training_plan.sammix_plan,
    dock_options=("epochs", "seg-epochs", "scope"),
    learns_from_reviews=True,
    predictor="napari_weaksam.methods.sammix:SamMixPredictor",
))

RETRAIN = register(Method(
    name="retrain",
    title="Retrain",
    summary="A mask head on SAM's embeddings learns from reviewed masks and tags; SAM answers "
            "its boxes.",
    settings_type=ReviewRetrainSettings,
    runner="napari_weaksam.retrain.from_reviews:retrain_from_reviews",
    predictor="napari_weaksam.retrain.review_predictor:ReviewRetrainPredictor",
    stages=training_plan.retrain_stages,
    plan_text=training_plan.retrain_plan,
    dock_options=("decoder-epochs",),
    learns_from_reviews=True,
    listed=False,
))

SEGNET = register(Method(
    name="segnet",
    title="Segmentation network",
    summary="A U-Net learns from a round's pseudo-labels, your reviewed masks and the tags.",
    settings_type=SegNetSettings,
    runner="napari_weaksam.segnet.run:run_segnet",
    predictor="napari_weaksam.segnet.predictor:SegNetPredictor",
    stages=training_plan.segnet_stages,
    plan_text=training_plan.segnet_plan,
    dock_options=("epochs", "size"),
    learns_from_reviews=True,
    listed=False,
))
