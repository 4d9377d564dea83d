"""The settings of each method and of the stages they share: defaults, ranges and help.

Each dataclass is the single source of its options (see :mod:`.option_ranges`): the CLI builds
its parser from them, the Train dock its spin boxes, and every round stores them as provenance.
This module imports no torch, so the ``weaksam`` command starts quickly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from .option_ranges import check_options, nested, option

CAM_INPUTS = ("image", "embedding")           # WeakMedSAM: image branch or head on SAM features
AFFINITY_SOURCES = ("embedding", "prompts")   # WeakMedSAM's random-walk affinities
CAM_SOURCES = ("adl", "weakmedsam")           # EP-SAM: where its CAMs come from
TRAINING_PROMPTS = ("uniform", "activation")  # decoder training prompts
PROMPT_STRATEGIES = ("points", "boxes", "boxes+mask")  # SAM prompts (prompts/strategy.py)
MASK_PROMPTS = ("none", "boxes", "boxes+mask")  # how SAM is asked for a final mask, if at all
SELECTION_RULES = ("ids", "agreement")  # which pseudo-labels train a round (retrain/selection.py)
ROUND_TARGETS = ("selected", "carried")  # a round's targets: the selected masks, or carried over
BOOL = (False, True)                          # the choices of an on/off option
#: What SAM-Mix trains of SAM: prompt encoder + mask decoder, or those and LoRA adapters on the
#: image encoder's attention (:meth:`.backbones.sam.SamBackbone.set_trainable_scope`).
TRAINABLE_SCOPES = ("decoder", "decoder+lora")


def floored_epochs(epochs: int, min_steps: int, batch_size: int, samples: int) -> int:
    """The epochs a classifier really trains: ``epochs``, or more when that many would give
    fewer than ``min_steps`` optimiser steps over ``samples`` in batches of ``batch_size`` (small
    projects train longer, so every run learns enough). The training loop and the Train dock's
    plan both use this."""
    batches = max(1, -(-samples // batch_size))
    return max(epochs, -(-min_steps // batches))


OUTPUT_STRIDES = (8, 16, 32)
TAG_CLASSIFIER_SCHEDULES = ("one-cycle", "cosine")
# the tag classifier's trunks, with their names for people
TAG_CLASSIFIER_TRUNKS = {"resnet18": "ResNet-18", "local": "local CNN"}
CAM_VIEWS = (1, 8)   # a CAM of the image alone, or of its eight rotations and reflections


# -- stages ------------------------------------------------------------------------------------
@dataclass
class EncodingSettings:
    """How ``weaksam embed`` runs the image encoder."""

    batch_size: int = option(0, low=0, high=256,
                             help="images per encoder batch; 0: the device's (1 on a CPU, where "
                                  "larger batches take longer per image; 8 on a GPU)")

    def __post_init__(self) -> None:
        check_options(self)



@dataclass
class AdlTraining:
    arch: str = option("resnet18", choices=("resnet18", "resnet50"),
                       help="ADL classifier; resnet50 is the original, slow on a CPU")
    input_size: int = option(128, low=32, high=2048, help="ADL classifier input size in pixels")
    epochs: int = option(15, low=1, high=10_000, help="classifier epochs",
                        label="Classifier epochs")
    batch_size: int = option(16, low=1, help="classifier batch size")
    learning_rate: float = option(1e-3, low=0, low_open=True, help="classifier learning rate")
    weight_decay: float = option(1e-4, low=0, help="classifier weight decay")
    high_pass_radius: float = option(4.0, low=0, low_open=True, help="high-pass channel radius")
    # The drop branch is off in this CPU preset: at 128 px every layer4 position sees the whole
    # image, and dropping the peak pushed CAMs off the object (EBHI-Seg initial-mask Dice 0.731
    # at 0 vs 0.706 at the original 0.75; inverted CAMs on synthetic data for 2 of 3 seeds).
    adl_drop_rate: float = option(0.0, low=0, high=1, high_open=True,
                                  help="attention-dropout drop probability")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed")
    recalibrate_batch_norm: bool = True  # see recalibrate_batch_norm
    losses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_options(self)


@dataclass
class DecoderTraining:
    epochs: int = option(4, low=1, high=1000, help="decoder epochs per round",
                        label="Decoder epochs")
    # at least this many optimiser steps: a stage with fewer targets (filtered pseudo-labels)
    # trains more epochs, not fewer steps
    min_steps: int = option(0, low=0, help="at least this many optimiser steps")
    batch_size: int = option(8, low=1, help="decoder batch size")
    learning_rate: float = option(1e-4, low=0, low_open=True, help="decoder learning rate")
    weight_decay: float = option(1e-2, low=0, help="decoder weight decay")
    # training prompts per sample (the original's 50 cost a CPU twice as much for little change)
    points: int = option(20, low=1, high=1000, help="training point prompts per mask",
                         flag="points")
    # ∝ the sample's CAM inside the target, as PEPM draws them when generating (else the decoder
    # learns to answer uniform points and under-segments); "uniform": as the original
    prompts: str = option("activation", choices=TRAINING_PROMPTS,
                          help="activation: ∝ the CAM inside each target; uniform: the original")
    # training boxes (prompts "boxes", "boxes+mask"): each side moved at random by up to this
    # share of the box, so the decoder does not learn to expect boxes tight around its targets
    box_jitter: float = option(0.1, low=0, high=0.5,
                               help="random shift of each training box side, share of the box")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed", flag="seed")
    losses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_options(self)


@dataclass
class RetrainSettings:
    rounds: int = option(3, low=0, high=100, help="retraining rounds after the preliminary one",
                        label="Rounds")
    selection: str = option(
        "ids", choices=SELECTION_RULES,
        help="which pseudo-labels train the next round: ids (the share of SAM's mask inside the "
             "initial mask, the original: a round cannot grow a mask) or agreement (SAM gives "
             "the same mask when asked again with its boxes: a round can grow or shrink one)")
    ids_threshold: float = option(0.9, low=0, high=1, help="IDS filter threshold", flag="ids")
    round_targets: str = option(
        "carried", choices=ROUND_TARGETS,
        help="what a round trains on: carried (every item's latest selected mask, its initial "
             "mask until one is selected: as many masks as the preliminary stage; measured: "
             "rounds no longer slide below it) or selected (the previous stage's selected "
             "masks only, the original)")
    agreement_threshold: float = option(
        0.9, low=0, high=1, flag="agreement",
        help="selection=agreement: least Dice between SAM's mask and its answer to its boxes")
    prompt_points: int = option(20, low=1, high=1000, flag="points",
                                help="PEPM points per (item, class); the original uses 50")
    human_weight: float = option(2.0, low=0, help="how much more people's masks count")
    min_kept: float = option(0.1, low=0, high=1,
                             help="share of masks kept when fewer pass the selection threshold")
    # the decoder trains on prompts of the same strategy (for points: DecoderTraining.prompts)
    prompts: str = option("points", choices=PROMPT_STRATEGIES,
                          help="points: PEPM in the initial mask; boxes: one per component of "
                               "it; boxes+mask: those boxes and the mask as SAM's mask prompt")
    min_prompt_iou: float = option(0.0, low=0, high=1,
                                   help="drop a box's mask when SAM's predicted IoU is below "
                                        "this (0: keep all)")
    decoder: DecoderTraining = nested(DecoderTraining, prefix="decoder-")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        params = asdict(self)
        params["decoder"].pop("losses")
        return params


@dataclass
class TagClassifierSettings:
    """How SAM-Mix's tag classifier (:mod:`.cam.tag_classifier`) is built and trained, and how
    its CAM becomes a mask. SAM-Mix's paper gives the branch's shape (a CNN with global average
    pooling, a binary focal loss on image-level tags, GradCAM thresholded into box and mask
    prompts) but almost none of its hyperparameters; each help text says where a default comes
    from."""

    trunk: str = option(
        "resnet18", choices=tuple(TAG_CLASSIFIER_TRUNKS), label="Classifier",
        help="resnet18: torchvision's from scratch, average pooling (SAM-Mix's shape; its CAM is "
             "8×8 at 128 px); local: WeakMedSAM's small convolutional branch, a CAM at a "
             "quarter of the input's resolution and log-sum-exp pooling, for small lesions")
    input_size: int = option(
        128, low=32, high=1024,
        help="classifier input size in pixels; 128 trains in minutes on a CPU, 256 is SAM-Mix's "
             "slice size (better for small lesions, about 4× slower)")
    output_stride: int = option(
        16, choices=OUTPUT_STRIDES,
        help="input pixels per CAM cell of resnet18; 16 (layer4 unstrided) gives an 8×8 CAM at "
             "128 px, where resnet18's own 32 gives only 4×4 (the local trunk's is 4)")
    epochs: int = option(
        20, low=1, high=10_000,
        help="classifier epochs (SAM-Mix's count is not public); 20 brings the training loss "
             "of a few hundred tagged slices to a plateau", label="Classifier epochs")
    batch_size: int = option(16, low=1, high=4096,
                             help="classifier batch size; 16 as the plugin's other classifiers")
    learning_rate: float = option(
        1e-3, low=0, low_open=True,
        help="AdamW peak learning rate (one-cycle); 1e-3, the plugin's from-scratch CNN rate "
             "(SAM-Mix's is not public)")
    weight_decay: float = option(1e-4, low=0,
                                 help="AdamW weight decay; 1e-4 as the plugin's other classifiers")
    focal_alpha: float = option(
        0.5, low=0, high=1,
        help="focal-loss weight of positives (negatives get 1 − α); the focal-loss paper's 0.25 "
             "suits detection's rare positives, tag data are often half positive, so 0.5 "
             "weighs both alike")
    focal_gamma: float = option(
        2.0, low=0, high=10,
        help="focal-loss focusing exponent; 2 is the focal-loss paper's default (0 gives BCE)")
    min_steps: int = option(
        150, low=0,
        help="at least this many optimiser steps: small projects train more epochs (as the "
             "plugin's other classifiers)")
    schedule: str = option("one-cycle", choices=TAG_CLASSIFIER_SCHEDULES,
                           help="learning-rate schedule; one-cycle as the plugin's classifiers")
    recalibrate_batch_norm: bool = option(
        True, choices=(False, True),
        help="after training, batch-norm statistics from one pass over the training images "
             "(the running averages of a short training lag behind its weights)")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed (initial weights, order, "
                                                       "flips)")
    cam_threshold: float = option(
        0.4, low=0, high=1, low_open=True, high_open=True,
        help="threshold τ on the min–max normalised CAM; 0.4 is the SAM-Mix authors' convention "
             "(their ADA-SAM code)")
    cam_views: int = option(
        1, choices=CAM_VIEWS,
        help="1: the CAM of the image as it is; 8: the mean over its eight rotations and "
             "reflections (the transforms the classifier trains with)")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- methods -----------------------------------------------------------------------------------
@dataclass
class WeakMedSamSettings:
    """Parameters of a run; stored with every proposal as its provenance."""

    cam_input: str = option("image", choices=CAM_INPUTS, label="CAM input",
                            help="image: convolutional branch; embedding: head on SAM features "
                                 "(the default on stained tissue)")
    image_size: int = option(128, low=32, help="the image branch's input size in pixels")
    subclasses: int = option(4, low=1, high=64, help="k-means clusters per class")
    child_weight: float = option(0.5, low=0, help="weight of the sub-class loss")
    epochs: int = option(40, low=1, high=10_000, help="classifier epochs",
                        label="Classifier epochs")
    ensemble: int = option(2, low=1, high=16,
                           help="classifiers trained with seeds seed, seed + 1, …; CAMs averaged")
    min_steps: int = option(150, low=0, help="at least this many optimiser steps")
    batch_size: int = option(16, low=1, help="classifier batch size")
    learning_rate: float = option(1e-3, low=0, low_open=True, help="classifier learning rate")
    affinity_source: str = option("embedding", choices=AFFINITY_SOURCES,
                                  help="embedding (SAM's features) or prompts (decoded grid)")
    grid: int = option(4, low=1, help="prompt grid per side (affinity_source=prompts)")
    prompts: str = option("boxes", choices=("boxes", "points"), flag="affinity-prompts",
                          help="affinity_source=prompts: boxes (LiteMedSAM answers boxes) or "
                               "points (as the original)")
    box_scales: tuple[float, ...] = (0.25, 0.5)
    radius: int = option(5, low=1, help="random-walk neighbourhood radius")
    beta: float = option(10.0, low=0, low_open=True, help="affinity sharpness")
    steps: int = option(4, low=0, help="random-walk steps")
    threshold: float = option(0.5, low=0, high=1, low_open=True, high_open=True,
                              help="threshold on the refined map")
    mask_prompts: str = option(
        "boxes", choices=MASK_PROMPTS, label="Mask from",
        help="boxes: SAM's answer to one box per component of the thresholded refined map "
             "(chosen on half of lgg_mri_dev's patients, better on the other half in both "
             "directions); boxes+mask: with the map as SAM's mask prompt too; none: the "
             "thresholded map itself, as the original")
    component_evidence: float = option(
        0.8, low=0, high=1, label="Keep blobs ≥",
        help="a component of the thresholded map is kept when its peak on the refined map is "
             "at least this share of the strongest component's (0 keeps every one, 1 the "
             "strongest only): weaker blobs beside the lesion are dropped")
    gate: float = option(0.5, low=0, high=1, help="presence probability an item needs")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed")
    save_maps: bool = option(True, choices=BOOL, flag="maps", help="store CAM/affinity maps")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class EpSamSettings:
    """Parameters of a run; stored with every proposal as its provenance."""

    cam_source: str = option("adl", choices=CAM_SOURCES, label="CAM source",
                             help="adl: Enhanced-ADL on the images; weakmedsam: its classifier "
                                  "(the default on radiology images, where ADL's CAM covers the "
                                  "whole organ)")
    classifier: AdlTraining = nested(AdlTraining)
    #: EP-SAM starts from the thresholded walk itself: WeakMedSAM's own final mask is not used
    embedding_classifier: WeakMedSamSettings = nested(
        WeakMedSamSettings, exclude=("mask_prompts", "component_evidence"))
    quantile: float = option(0.3, low=0, high=1, high_open=True,
                             help="bottom share of non-zero CAM values left out")
    opening_fraction: float = option(0.02, low=0, high=0.5,
                                     help="opening disk radius, share of the short side")
    gate: float = option(0.5, low=0, high=1, help="presence probability for untagged items")
    engine: RetrainSettings = nested(RetrainSettings)
    zero_shot: bool = option(False, choices=BOOL,
                             help="also store the pretrained decoder's answer as a round")
    save_maps: bool = option(True, choices=BOOL, flag="maps", help="store CAM/affinity maps")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        params = asdict(self)
        params["classifier"].pop("losses")
        params["engine"] = self.engine.to_dict()
        if self.cam_source == "adl":
            params.pop("embedding_classifier")
        else:
            params.pop("classifier")
        return params


@dataclass
class SamMixSettings:
    """Parameters of a SAM-Mix run; stored with every proposal as its provenance. The authors'
    code (ADA-SAM) gives λ, the SAM branch's learning rate, its epochs and the LoRA rank; the
    rest is chosen here (help texts)."""

    classifier: TagClassifierSettings = nested(TagClassifierSettings)
    seg_weight: float = option(
        0.5, low=0, label="Mask loss weight",
        help="λ: weight of the segmentation loss (Dice of SAM's best answer on people's masks) "
             "beside the "
             "classification loss; 0.5 as the authors' code")
    seg_epochs: int = option(
        10, low=1, high=1000, label="Mask epochs",
        help="passes over people's masks, spread evenly over the classifier's steps after the "
             "warm-up; 10 as the authors' code")
    seg_warmup: float = option(
        0.5, low=0, high=1, high_open=True, label="Mask warm-up",
        help="share of the classifier's steps before SAM trains on people's masks: a classifier "
             "from scratch points its GradCAM anywhere at first, and prompts away from the "
             "lesion teach SAM to answer nothing (0: from the first step)")
    seg_learning_rate: float = option(
        1e-4, low=0, low_open=True,
        help="peak learning rate of SAM's trained parameters; 1e-4 as the authors' code")
    mask_focal_weight: float = option(
        0.0, low=0, label="Mask focal weight",
        help="weight of a focal loss beside the Dice of SAM's answer (SAM's own training: 20); "
             "0: Dice alone")
    scope: str = option(
        "decoder", choices=TRAINABLE_SCOPES, label="SAM trains",
        help="decoder: prompt encoder + mask decoder on cached embeddings; decoder+lora: also "
             "LoRA adapters on the image encoder (the paper's; every image is encoded again "
             "after training, slow on a CPU)")
    lora_rank: int = option(8, low=1, high=256,
                            help="LoRA rank on q and v of every encoder block; 8 as the authors")
    gate: float = option(0.5, low=0, high=1, help="presence probability for untagged items")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed")
    save_maps: bool = option(True, choices=BOOL, flag="maps", help="store the GradCAM maps")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SegNetSettings:
    """A segmentation network (a U-Net, MONAI's ``BasicUNet``) trained on a finished round's
    pseudo-labels and the reviewed masks (:mod:`.segnet`); stored with every proposal it makes."""

    source_round: int = option(
        0, low=0, help="the round whose proposals it learns from (0: the latest finished round "
                       "of a method)")
    size: int = option(128, low=32, high=1024, label="Network input size",
                       help="side of the square the images are resized to for the network")
    # widths of the encoder's five levels and of the last decoder level: a quarter of MONAI's
    # default (about 2 M parameters), so a few hundred slices train in minutes on a CPU
    features: tuple[int, ...] = (16, 32, 64, 128, 256, 16)
    epochs: int = option(8, low=1, high=1000, label="Network epochs",
                         help="passes over the items (each drawn flipped or turned at random; "
                              "on lgg_mri_dev 16 scored no better than 8, in twice the time)")
    min_steps: int = option(200, low=0, help="at least this many optimiser steps")
    warm_start: bool = option(
        True, choices=BOOL,
        help="continue the network of the round it follows when that round is a U-Net that "
             "learnt from the same round's proposals and fits (again after more reviews: "
             "minutes become about one)")
    warm_epochs: int = option(2, low=1, high=1000,
                              help="passes when it continues a network (no step floor)")
    batch_size: int = option(16, low=1, high=1024, help="items per training batch")
    learning_rate: float = option(2e-3, low=0, low_open=True, help="peak learning rate")
    weight_decay: float = option(1e-4, low=0, help="weight decay")
    pseudo_weight: float = option(
        1.0, low=0, high=1,
        help="weight of a pseudo-label as a target (a reviewed mask or a tag weighs 1)")
    confidence_weighting: bool = option(
        True, choices=BOOL, help="each pseudo-label's weight × the confidence its round gave it")
    mask_share: float = option(
        0.25, low=0, high=0.9,
        help="share of each batch given to reviewed items (they are few: drawn more often; "
             "0: each once). With 20 reviewed masks over EP-SAM's round on H&E: 0.851 Dice "
             "against 0.779 with 0")
    threshold: float = option(0.5, low=0, high=1,
                              help="network probability that marks a pixel as the class")
    gate: float = option(0.5, low=0, high=1, help="presence probability for untagged items")
    prompts: str = option(
        "none", choices=MASK_PROMPTS,
        help="none: the network's mask itself (no SAM needed, also for new images); boxes: "
             "SAM's answer to one box per component of it; boxes+mask: with it as SAM's mask "
             "prompt too (+0.013 Dice on brain MR, −0.015 on H&E, measured)")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReviewRetrainSettings:
    """How *Retrain* learns from the masks people accepted or corrected, on top of a finished
    round (:mod:`.retrain.from_reviews`); stored with every proposal it makes."""

    epochs: int = option(
        4, low=1, high=1000, label="Retrain epochs",
        help="passes over the project's items when the head starts afresh; the people's masks "
             "are drawn more often (mask share)")
    warm_epochs: int = option(
        2, low=1, high=1000,
        help="passes when it continues the previous Retrain's head (warm start)")
    batch_size: int = option(16, low=1, high=1024, help="items per training batch")
    learning_rate: float = option(1e-3, low=0, low_open=True, help="peak learning rate")
    weight_decay: float = option(1e-4, low=0, help="weight decay")
    hidden: int = option(32, low=4, high=512, help="channels of the mask head")
    depth: int = option(1, low=1, high=6,
                        help="3 × 3 blocks of the mask head (each after the first sees twice "
                             "as far)")
    pseudo_weight: float = option(
        0.5, low=0, high=1,
        help="weight of the proposals of the method round Retrain follows as targets on the "
             "unreviewed items tagged with a class (a reviewed mask weighs 1; 0: tags only)")
    pseudo_trust: str = option(
        "fixed", choices=("fixed", "reviews"),
        help="fixed: the proposals weigh pseudo-weight; reviews: pseudo-weight × their mean "
             "Dice to the masks people reviewed")
    prior: bool = option(
        True, choices=BOOL,
        help="the head also reads those proposals as an input, and learns from the reviewed "
             "items where they go wrong")
    mask_share: float = option(
        0.25, low=0, high=0.9,
        help="share of each batch given to reviewed items (they are few: drawn more often)")
    presence_weight: float = option(
        0.5, low=0, help="weight of the tag loss on unreviewed items tagged with a class "
                         "(some cells of it must light up)")
    threshold: float = option(0.5, low=0, high=1,
                              help="head probability that marks a cell as the class")
    gate: float = option(0.5, low=0, high=1, help="presence probability for untagged items")
    prompts: str = option(
        "boxes+mask", choices=MASK_PROMPTS, label="Retrain: final mask",
        help="how SAM is asked for the final mask: none (the head's mask itself), one box per "
             "component of it, or those boxes with it as SAM's mask prompt (none is the default "
             "on H&E patches, where it scored higher over every method's round)")
    warm_start: bool = option(True, choices=BOOL,
                              help="continue the previous Retrain's head when it fits")
    decoder_epochs: int = option(
        0, low=0, high=1000, label="Retrain: SAM decoder epochs",
        help="passes of SAM's prompt encoder and mask decoder over the reviewed masks (a "
             "jittered box around each component), from the pretrained weights; 0: SAM as "
             "pretrained (H&E: 10 measured +0.05 Dice with 20 masks, at ~2 min on a CPU)")
    seed: int = option(0, low=0, high=2**31 - 1, help="random seed")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
