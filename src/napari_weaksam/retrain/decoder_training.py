"""Fine-tune the prompt encoder and mask decoder on cached embeddings (the image encoder stays
frozen and is never run), with point prompts drawn from each target mask.

Loss: soft Dice + soft IoU on the sigmoid of the low-resolution logits, inside the part of the
model frame the image covers, per sample, weighted (people's masks may weigh more than pseudo-
labels). Nothing here augments images or saves labels: samples are used as they are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones.sam import Embedding, SamBackbone
from ..method_settings import DecoderTraining
from ..progress import check_cancel
from ..prompts.points import activation_points, uniform_points

EpochCallback = Callable[[int, int, float], None]  # epoch, epochs, mean loss
SMOOTHING = 1e-3


@dataclass
class TrainingSample:
    """One target mask (bool, item frame) for one item, and how much it counts."""

    item_id: int
    embedding: Embedding
    mask: np.ndarray
    weight: float = 1.0
    origin: str = "pseudo-label"   # "initial", "pseudo-label", "accepted", "corrected"
    activation: np.ndarray | None = None   # the item's CAM for the class, when it has one


def train_decoder(backbone: SamBackbone, samples: Sequence[TrainingSample],
                  settings: DecoderTraining, *, on_epoch: EpochCallback | None = None,
                  cancel: threading.Event | None = None) -> list[float]:
    """Train ``backbone``'s prompt encoder and mask decoder in place; mean loss per epoch."""
    usable = [s for s in samples if s.mask.any()]
    if not usable:
        raise ValueError("no training sample has a non-empty mask")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    targets = [low_res_target(backbone, s.embedding, s.mask) for s in usable]
    parameters = [p for name, p in backbone.named_parameters()
                  if name.startswith(("prompt_encoder.", "mask_decoder."))]
    optimiser = torch.optim.AdamW(parameters, lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    epochs, batches = training_length(len(usable), settings)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs * batches)
    for epoch in range(epochs):
        order = rng.permutation(len(usable))
        total = 0.0
        for start in range(0, len(order), settings.batch_size):
            check_cancel(cancel)
            chunk = order[start:start + settings.batch_size]
            loss = _batch_loss(backbone, [usable[i] for i in chunk],
                               [targets[i] for i in chunk], settings, rng)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(chunk)
        settings.losses.append(total / len(usable))
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs, settings.losses[-1])
    return settings.losses


def training_length(samples: int, settings: DecoderTraining) -> tuple[int, int]:
    """Epochs and batches per epoch for ``samples`` non-empty targets: ``settings.epochs``, or
    more when that many would give fewer than ``settings.min_steps`` optimiser steps."""
    batches = -(-samples // settings.batch_size)
    return max(settings.epochs, -(-settings.min_steps // batches)), batches


def point_logits(backbone: SamBackbone, embedding: Embedding, points: np.ndarray) -> torch.Tensor:
    """Low-resolution (256, 256) logits in the model frame for positive ``points`` (P, 2) in item
    pixels, with gradients (full precision: no autocast)."""
    low_res, _iou = backbone.decode_low_res(embedding, points=np.asarray(points)[None],
                                            point_labels=np.ones((1, len(points)), np.int64))
    return low_res[0, 0]


def training_points(sample: TrainingSample, settings: DecoderTraining,
                    rng: np.random.Generator) -> np.ndarray:
    """Prompts for one sample: ∝ its activation inside the target when ``settings.prompts`` is
    "activation" and the sample has a CAM with activation there, else uniform in the target."""
    if settings.prompts == "activation" and sample.activation is not None:
        points = activation_points(sample.activation, sample.mask, settings.points, rng)
        if len(points):
            return points
    return uniform_points(sample.mask, settings.points, rng)


def low_res_target(backbone: SamBackbone, embedding: Embedding,
                   mask: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """The item-frame mask in the decoder's low-resolution frame, and the valid (h, w) there."""
    if mask.shape != embedding.original_shape:
        raise ValueError(f"mask {mask.shape} does not match the item {embedding.original_shape}")
    frame = 256
    ratio = frame / backbone.preprocessing.size
    h, w = (max(1, round(n * ratio)) for n in embedding.resized_shape)
    resized = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], (h, w),
                            mode="bilinear", align_corners=False)[0, 0]
    target = torch.zeros((frame, frame))
    target[:h, :w] = resized
    return target.to(backbone.device), (h, w)


def soft_dice_iou_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss + soft IoU loss of one sample."""
    p = torch.sigmoid(logits)
    overlap = (p * target).sum()
    total = p.sum() + target.sum()
    dice = 1 - (2 * overlap + SMOOTHING) / (total + SMOOTHING)
    iou = 1 - (overlap + SMOOTHING) / (total - overlap + SMOOTHING)
    return dice + iou


def _batch_loss(backbone: SamBackbone, samples: list[TrainingSample],
                targets: list[tuple[torch.Tensor, tuple[int, int]]],
                settings: DecoderTraining, rng: np.random.Generator) -> torch.Tensor:
    losses, weights = [], []
    for sample, (target, (h, w)) in zip(samples, targets, strict=True):
        points = training_points(sample, settings, rng)
        logits = point_logits(backbone, sample.embedding, points)
        losses.append(soft_dice_iou_loss(logits[:h, :w], target[:h, :w]))
        weights.append(sample.weight)
    weight = torch.tensor(weights, device=backbone.device)
    return (torch.stack(losses) * weight).sum() / weight.sum()
