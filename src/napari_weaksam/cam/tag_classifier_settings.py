"""Settings of SAM-Mix's classification branch (:mod:`.tag_classifier`): defaults, ranges, help.

SAM-Mix's paper gives the branch's shape (a CNN with global average pooling on its last
convolutional features, a binary focal loss on image-level tags, GradCAM thresholded into box and
mask prompts) but almost none of its hyperparameters; each default below says where it comes
from. This module imports no torch (the CLI builds its options from it without loading torch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..option_ranges import check_options, option

OUTPUT_STRIDES = (8, 16, 32)
SCHEDULES = ("one-cycle", "cosine")


@dataclass
class TagClassifierSettings:
    """How the tag classifier is built and trained, and how its CAM becomes a mask."""

    input_size: int = option(
        128, low=32, high=1024,
        help="classifier input size in pixels; 128 trains in minutes on a CPU, 256 is SAM-Mix's "
             "slice size (better for small lesions, about 4× slower)")
    output_stride: int = option(
        16, choices=OUTPUT_STRIDES,
        help="input pixels per CAM cell; 16 (layer4 unstrided) gives an 8×8 CAM at 128 px, "
             "where resnet18's own 32 gives only 4×4")
    epochs: int = option(
        20, low=1, high=10_000,
        help="classifier epochs (SAM-Mix's count is not public); 20 brings the training loss "
             "of a few hundred tagged slices to a plateau")
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
    schedule: str = option("one-cycle", choices=SCHEDULES,
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

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
