"""Fine-tune the prompt encoder and mask decoder on cached embeddings (the image encoder stays
frozen and is never run), with prompts of the generation's strategy made from each target mask
(:func:`~napari_weaksam.prompts.strategy.training_prompts`).

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

from ..backbones.sam import Embedding, SamBackbone
from ..method_settings import DecoderTraining, floored_epochs
from ..prompts.decode import prompt_logits
from ..prompts.dense import low_res_frame
from ..prompts.strategy import PromptSet, check_strategy, training_prompts
from ..training_loop import LoopSettings, train_loop

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
    region: np.ndarray | None = None       # the mask generation prompts from (initial mask)


def train_decoder(backbone: SamBackbone, samples: Sequence[TrainingSample],
                  settings: DecoderTraining, *, strategy: str = "points",
                  on_epoch: EpochCallback | None = None,
                  cancel: threading.Event | None = None) -> list[float]:
    """Train ``backbone``'s prompt encoder and mask decoder in place on prompts of ``strategy``
    (one of ``PROMPT_STRATEGIES``); mean loss per epoch."""
    check_strategy(strategy)
    usable = [s for s in samples if s.mask.any()]
    if not usable:
        raise ValueError("no training sample has a non-empty mask")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    targets = [low_res_target(backbone, s.embedding, s.mask) for s in usable]

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        chunk = index.tolist()
        return _batch_loss(backbone, [usable[i] for i in chunk], [targets[i] for i in chunk],
                           settings, strategy, rng)

    def epoch_done(epoch: int, epochs: int, loss: float) -> None:
        settings.losses.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, epochs, loss)

    loop = LoopSettings(epochs=settings.epochs, batch_size=settings.batch_size,
                        learning_rate=settings.learning_rate,
                        weight_decay=settings.weight_decay, min_steps=settings.min_steps,
                        seed=settings.seed, schedule="cosine")
    train_loop(backbone.trainable_parameters(), len(usable), batch_loss, loop, generator=rng,
               on_epoch=epoch_done, cancel=cancel)
    return settings.losses


def training_length(samples: int, settings: DecoderTraining) -> tuple[int, int]:
    """Epochs and batches per epoch for ``samples`` non-empty targets: ``settings.epochs``, or
    more when that many would give fewer than ``settings.min_steps`` optimiser steps."""
    batches = -(-samples // settings.batch_size)
    return floored_epochs(settings.epochs, settings.min_steps, settings.batch_size,
                          samples), batches


def sample_prompts(sample: TrainingSample, settings: DecoderTraining, strategy: str,
                   rng: np.random.Generator) -> PromptSet:
    """The prompts one sample trains with (see :func:`training_prompts`)."""
    return training_prompts(strategy, sample.mask, settings, rng, activation=sample.activation,
                            region=sample.region)


def low_res_target(backbone: SamBackbone, embedding: Embedding,
                   mask: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """The item-frame mask in the decoder's low-resolution frame, and the valid (h, w) there."""
    target, valid = low_res_frame(mask, embedding, backbone.preprocessing.size)
    return target.to(backbone.device), valid


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
                settings: DecoderTraining, strategy: str,
                rng: np.random.Generator) -> torch.Tensor:
    losses, weights = [], []
    for sample, (target, (h, w)) in zip(samples, targets, strict=True):
        prompts = sample_prompts(sample, settings, strategy, rng)
        logits = prompt_logits(backbone, sample.embedding, prompts)
        losses.append(soft_dice_iou_loss(logits[:h, :w], target[:h, :w]))
        weights.append(sample.weight)
    weight = torch.tensor(weights, device=backbone.device)
    return (torch.stack(losses) * weight).sum() / weight.sum()
