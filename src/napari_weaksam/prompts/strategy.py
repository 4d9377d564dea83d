"""Named prompt strategies: what SAM is asked, when generating a mask for a region and when
training the decoder on a target.

- ``"points"``: PEPM, points inside the region ∝ its activation (EP-SAM); training: points in the
  target, ∝ its activation or uniform (``DecoderTraining.prompts``);
- ``"boxes"``: one box per connected component of the region (of the target when training,
  jittered);
- ``"boxes+mask"``: those boxes, each with the region inside it as SAM's dense mask prompt
  (SAM-Mix's box + mask from a thresholded CAM). A person's mask has no region to prompt with:
  it trains on its boxes alone (the target itself as the mask prompt would teach the decoder to
  copy its prompt).

Every prompt is in the item's own pixels; :func:`~.decode.decode_prompts` turns a prompt set
into one mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..backbones.sam import Embedding
from ..method_settings import PROMPT_STRATEGIES, DecoderTraining
from .boxes import box_region, jitter_boxes, mask_boxes
from .dense import dense_prompt
from .points import activation_points, uniform_points


@dataclass
class PromptSet:
    """N prompts for one item, decoded together; whichever parts the strategy uses."""

    points: np.ndarray | None = None        # (N, P, 2) x, y
    point_labels: np.ndarray | None = None  # (N, P) 1 foreground, 0 background
    boxes: np.ndarray | None = None         # (N, 4) x0, y0, x1, y1 (inclusive corners)
    dense: np.ndarray | None = None         # (N, H, W) item-frame masks for the mask prompt

    def __len__(self) -> int:
        for part in (self.points, self.boxes, self.dense):
            if part is not None:
                return len(part)
        return 0

    def mask_logits(self, embedding: Embedding, model_size: int) -> torch.Tensor | None:
        """The dense masks as SAM's (N, 1, 256, 256) mask-prompt logits, or None."""
        if self.dense is None:
            return None
        return torch.cat([dense_prompt(mask, embedding, model_size) for mask in self.dense])


def generation_prompts(strategy: str, activation: np.ndarray, region: np.ndarray, points: int,
                       rng: np.random.Generator) -> PromptSet:
    """The prompts that ask SAM for the object in ``region`` (bool, item frame), whose class
    activation is ``activation``; empty when the region gives none."""
    check_strategy(strategy)
    if strategy == "points":
        return point_set(activation_points(activation, region, points, rng))
    boxes = mask_boxes(region)
    if strategy == "boxes":
        return PromptSet(boxes=boxes)
    return PromptSet(boxes=boxes, dense=_regions(region, boxes))


def training_prompts(strategy: str, target: np.ndarray, settings: DecoderTraining,
                     rng: np.random.Generator, *, activation: np.ndarray | None = None,
                     region: np.ndarray | None = None) -> PromptSet:
    """The prompts a training sample answers with ``target`` (non-empty bool mask):
    ``activation`` is its CAM and ``region`` the mask generation prompts from, when it has them.
    """
    check_strategy(strategy)
    if strategy == "points":
        return point_set(target_points(target, activation, settings, rng))
    boxes = jitter_boxes(target_boxes(target), target.shape, settings.box_jitter, rng)
    if strategy == "boxes" or region is None:
        return PromptSet(boxes=boxes)
    return PromptSet(boxes=boxes, dense=_regions(region, boxes))


def target_points(target: np.ndarray, activation: np.ndarray | None,
                  settings: DecoderTraining, rng: np.random.Generator) -> np.ndarray:
    """Training points: ∝ the activation inside the target when ``settings.prompts`` is
    "activation" and the CAM reaches the target, else uniform in it."""
    if settings.prompts == "activation" and activation is not None:
        points = activation_points(activation, target, settings.points, rng)
        if len(points):
            return points
    return uniform_points(target, settings.points, rng)


def target_boxes(target: np.ndarray) -> np.ndarray:
    """Boxes of a target's components; a target made only of specks gets boxes around them all
    the same (a training sample always has a prompt)."""
    boxes = mask_boxes(target)
    return boxes if len(boxes) else mask_boxes(target, min_area=1)


def point_set(points: np.ndarray) -> PromptSet:
    """One prompt of positive ``points`` (P, 2); empty when there are none."""
    if len(points) == 0:
        return PromptSet()
    return PromptSet(points=points[None], point_labels=np.ones((1, len(points)), dtype=np.int64))


def check_strategy(strategy: str) -> None:
    if strategy not in PROMPT_STRATEGIES:
        raise ValueError(f"prompt strategy {strategy!r}: choose one of "
                         f"{', '.join(PROMPT_STRATEGIES)}")


def _regions(region: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
    if len(boxes) == 0:
        return None
    return np.stack([box_region(region, box) for box in boxes])
