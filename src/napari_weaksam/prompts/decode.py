"""Decode a prompt set against one embedding into one mask: the union of its prompts' masks.

Several boxes (one per component of a region) are decoded together, each answering its own
component; the item's mask is their union. A prompt whose predicted IoU is below ``min_iou`` is
dropped first (0 keeps every one). :func:`answer_region` asks SAM for what a thresholded map
marks.
"""

from __future__ import annotations

import numpy as np
import torch

from ..backbones.sam import Embedding, SamBackbone
from .strategy import PromptSet, generation_prompts


def decode_prompts(backbone: SamBackbone, embedding: Embedding, prompts: PromptSet,
                   min_iou: float = 0.0) -> np.ndarray:
    """One bool mask in the item's frame (all False when there is no prompt)."""
    if len(prompts) == 0:
        return np.zeros(embedding.original_shape, dtype=bool)
    with torch.inference_mode():
        decoded = backbone.decode(
            embedding, boxes=prompts.boxes, points=prompts.points,
            point_labels=prompts.point_labels,
            mask_logits=prompts.mask_logits(embedding, backbone.preprocessing.size))
    masks = decoded.masks()[:, 0]
    if min_iou > 0:
        masks = masks[decoded.iou[:, 0].cpu().numpy() >= min_iou]
    return masks.any(axis=0) if len(masks) else np.zeros(embedding.original_shape, dtype=bool)


def decode_region(backbone: SamBackbone, embedding: Embedding, activation: np.ndarray,
                  region: np.ndarray, strategy: str) -> np.ndarray | None:
    """SAM's answer to the ``strategy``'s prompts ("boxes" or "boxes+mask") for ``region``
    (bool, item frame) drawn from ``activation``; None when the region is too small to give
    any prompt."""
    rng = np.random.default_rng(0)        # boxes draw nothing; points would
    prompts = generation_prompts(strategy, activation, region, 0, rng)
    return decode_prompts(backbone, embedding, prompts) if len(prompts) else None


def answer_region(backbone: SamBackbone, embedding: Embedding, activation: np.ndarray,
                  region: np.ndarray, strategy: str) -> np.ndarray:
    """SAM's mask for the object a thresholded map marks (:func:`decode_region`); a region too
    small to give any prompt stays as it is."""
    answer = decode_region(backbone, embedding, activation, region, strategy)
    return region if answer is None else answer


def prompt_logits(backbone: SamBackbone, embedding: Embedding,
                  prompts: PromptSet) -> torch.Tensor:
    """Low-resolution (256, 256) logits in the model frame for the union of the prompts' masks
    (the maximum over prompts), with gradients and in full precision (no autocast): what the
    decoder trains on."""
    low_res, _iou = backbone.decode_low_res(
        embedding, boxes=prompts.boxes, points=prompts.points,
        point_labels=prompts.point_labels,
        mask_logits=prompts.mask_logits(embedding, backbone.preprocessing.size))
    return low_res[0, 0] if len(low_res) == 1 else low_res[:, 0].amax(dim=0)
