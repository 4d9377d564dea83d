"""Training a parent + sub-class classifier: BCE(parent) + λ·BCE(sub-class), seeded and cancellable.

It trains WeakMedSAM's image branch (:mod:`.image_classifier`) and the head on frozen SAM
embeddings (:mod:`.embedding_classifier`): the model and its inputs come from the caller, the loop
is the plugin's one training loop (:mod:`..training_loop`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..training_loop import LoopSettings, train_loop

LossCallback = Callable[[int, int, float], None]  # epoch, epochs, mean loss


@dataclass
class ClassifierTraining:
    epochs: int = 12
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    child_weight: float = 0.5
    min_steps: int = 150   # small projects train for more epochs, so every run learns enough
    seed: int = 0
    # the forward pass's precision (None: float32); the loss stays float32
    autocast: torch.dtype | None = None
    losses: list[float] = field(default_factory=list)


def train_classifier(model: nn.Module, inputs: torch.Tensor, labels: np.ndarray,
                     subclass_targets: np.ndarray, settings: ClassifierTraining, *,
                     device: torch.device | str = "cpu", flip_axes: tuple[int, ...] = (-1,),
                     transpose: bool = False, on_epoch: LossCallback | None = None,
                     cancel: threading.Event | None = None) -> nn.Module:
    """Fit ``model`` (freshly initialised under ``settings.seed``) on (N, C, h, w) inputs, kept on
    the CPU and moved per batch; each sample is flipped along each of ``flip_axes`` with p = ½,
    and, with ``transpose``, its last two axes swapped with p = ½ (square inputs: together with
    both flips this gives all eight rotations and reflections). One-cycle schedule, step floor
    ``settings.min_steps`` (:mod:`..training_loop`); ``settings.losses`` gets each epoch's mean
    loss as it ends."""
    generator = torch.Generator().manual_seed(settings.seed)
    model = model.to(device)
    y_parent = torch.as_tensor(labels, dtype=torch.float32)
    y_child = torch.as_tensor(subclass_targets, dtype=torch.float32)
    bce = nn.BCEWithLogitsLoss()

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        batch = augment(inputs[index].float(), generator, flip_axes, transpose).to(device)
        with torch.autocast(torch.device(device).type, dtype=settings.autocast or torch.float32,
                            enabled=settings.autocast is not None):
            parent, child = model(batch)
        return bce(parent.float(), y_parent[index].to(device)) + settings.child_weight * bce(
            child.float(), y_child[index].to(device))

    def epoch_done(epoch: int, epochs: int, loss: float) -> None:
        settings.losses.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, epochs, loss)

    loop = LoopSettings(epochs=settings.epochs, batch_size=settings.batch_size,
                        learning_rate=settings.learning_rate,
                        weight_decay=settings.weight_decay, min_steps=settings.min_steps,
                        seed=settings.seed, schedule="one-cycle")
    model.train()
    train_loop(model.parameters(), len(labels), batch_loss, loop, generator=generator,
               on_epoch=epoch_done, cancel=cancel)
    return model.eval()


def augment(batch: torch.Tensor, generator: torch.Generator, axes: tuple[int, ...],
             transpose: bool) -> torch.Tensor:
    """Random flips (and transposes) of each sample: label-preserving for image-level tags."""
    batch = batch.clone()
    for axis in axes:
        flip = torch.rand(len(batch), generator=generator) < 0.5
        batch[flip] = batch[flip].flip(axis)
    if transpose:
        swap = torch.rand(len(batch), generator=generator) < 0.5
        batch[swap] = batch[swap].transpose(-1, -2)
    return batch
