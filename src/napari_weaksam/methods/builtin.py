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
from .image_kinds import RADIOLOGY, STAINED, KindDefault
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
    dock_options=("cam-source", "epochs", "rounds", "decoder-epochs"),
    learns_from_reviews=True,
    suits=(STAINED,),   # EBHI-Seg 0.78–0.81 (README), WeakMedSAM's best there 0.72
    kind_defaults={RADIOLOGY: {"cam-source": KindDefault(
        "weakmedsam", "ADL's CAM covers the whole brain on MR: Dice 0.10 on lgg_mri_dev, 0.61 "
                      "from WeakMedSAM's classifier")}},
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
    dock_options=("cam-input", "epochs"),
    suits=(RADIOLOGY,),   # lgg_mri_dev 0.65, EP-SAM's best there 0.61 and SAM-Mix's 0.59 (README)
    kind_defaults={STAINED: {"cam-input": KindDefault(
        "embedding", "its head on SAM's features finds the tissue better on H&E: Dice 0.72 vs "
                     "0.60 from the image on ebhi_seg_colon")}},
))

SAMMIX = register(Method(
    name="sammix",
    title="SAM-Mix",
    summary="A tag classifier's GradCAM box + mask prompt SAM; SAM learns from your masks.",
    settings_type=SamMixSettings,
    runner="napari_weaksam.methods.sammix:run_sammix",
    stages=training_plan.sammix_stages,
    plan_text=training_plan.sammix_plan,
    dock_options=("trunk", "epochs", "seg-epochs", "scope"),
    learns_from_reviews=True,
    predictor="napari_weaksam.methods.sammix:SamMixPredictor",
    kind_defaults={RADIOLOGY: {
        "trunk": KindDefault(
            "local", "ResNet-18's GradCAM covers the whole brain on MR: CAM Dice 0.11 vs 0.44 "
                     "on held-out lgg_mri_dev patients, SAM-Mix 0.10 vs 0.52 from the tags"),
        "cam-views": KindDefault(
            8, "the local classifier varies with its seed on MR; its CAM averaged over the "
               "eight rotations and reflections scored higher for each of 3 seeds (SAM-Mix "
               "from the tags: 0.585 vs 0.517)")}},
    kind_caveats={RADIOLOGY: "from the tags alone it is below WeakMedSAM (Dice 0.59 vs 0.66 on "
                             "lgg_mri_dev, 3 seeds); 20 reviewed masks gave 0.46–0.65"},
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
    dock_options=("prompts", "decoder-epochs"),
    learns_from_reviews=True,
    listed=False,
    kind_defaults={STAINED: {"prompts": KindDefault(
        "none", "the head's own mask scored higher than SAM's answer to its boxes on H&E over "
                "every method's round: Dice with 20 reviewed masks 0.806 vs 0.716 over "
                "WeakMedSAM's, 0.825 vs 0.791 over EP-SAM's on ebhi_seg_colon")}},
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
    kind_defaults={RADIOLOGY: {"prompts": KindDefault(
        "boxes+mask", "SAM's answer to the network's boxes and mask: +0.013 Dice on lgg_mri_dev "
                      "over 3 seeds, −0.015 on H&E")}},
))
