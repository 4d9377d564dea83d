"""One training loop for every model the plugin trains: the tag classifiers, SAM's decoder, LoRA.

The loop owns what every training shares: the shuffling generator (seeded), an AdamW optimiser
over the parameters it is given, a learning-rate schedule (one-cycle, cosine or constant), the
step floor (:func:`.method_settings.floored_epochs`), cancellation between batches
(:func:`.progress.check_cancel`) and the mean loss of each epoch (returned, and reported to a
callback). The caller supplies ``batch_loss``: the loss of one batch, given the indices of its
samples (a 1-D int64 tensor), with gradients. Models, inputs, augmentation and devices stay the
caller's business; the loop does not touch the global torch seed (the caller seeds it before
building a model, when it builds one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .method_settings import floored_epochs
from .progress import check_cancel

EpochCallback = Callable[[int, int, float], None]  # epoch (1-based), epochs, mean loss
BatchLoss = Callable[[torch.Tensor], torch.Tensor]  # sample indices → scalar loss
SCHEDULES = ("one-cycle", "cosine", "constant")


@dataclass(frozen=True)
class LoopSettings:
    """How long and how fast to train. ``min_steps``: at least this many optimiser steps (small
    sets train more epochs); ``schedule``: "one-cycle" (warm-up to ``learning_rate``, then
    annealing), "cosine" (from ``learning_rate`` down to 0) or "constant"."""

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    min_steps: int = 0
    seed: int = 0
    schedule: str = "one-cycle"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; expected one of {SCHEDULES}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be "
                             "at least 1")


def oversample(teaching: torch.Tensor, reviewed: torch.Tensor, share: float) -> torch.Tensor:
    """``teaching`` (sample indices) with the ``reviewed`` ones among them repeated so that
    they make about ``share`` of what is drawn: people's masks are few beside the pseudo-labels
    and tags, and would otherwise barely count."""
    if len(reviewed) == 0 or share == 0:
        return teaching
    others = len(teaching) - len(reviewed)
    repeats = max(1, round(share * others / (len(reviewed) * (1 - share))))
    return torch.cat([teaching, reviewed.repeat(repeats - 1)])


def training_length(samples: int, settings: LoopSettings) -> tuple[int, int]:
    """(epochs, batches per epoch) that :func:`train_loop` runs over ``samples`` samples."""
    batches = max(1, -(-samples // settings.batch_size))
    epochs = floored_epochs(settings.epochs, settings.min_steps, settings.batch_size, samples)
    return epochs, batches


def make_schedule(optimiser: torch.optim.Optimizer, settings: LoopSettings,
                  steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule over ``steps`` optimiser steps."""
    if settings.schedule == "one-cycle":   # each parameter group peaks at its own rate
        peaks = [group["lr"] for group in optimiser.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimiser, peaks, total_steps=steps)
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _step: 1.0)


def train_loop(parameters: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]], samples: int,
               batch_loss: BatchLoss,
               settings: LoopSettings, *,
               generator: torch.Generator | np.random.Generator | None = None,
               on_epoch: EpochCallback | None = None,
               cancel: threading.Event | None = None) -> list[float]:
    """Minimise ``batch_loss`` over ``samples`` samples; the mean loss of each epoch.

    ``parameters``: the tensors to train, or torch parameter groups (dicts with "params" and
    optionally their own "lr", which the schedule then peaks at instead of
    ``settings.learning_rate``): SAM-Mix trains its classifier and SAM's parameters together.

    Every epoch visits the samples in a new random order, in batches of ``settings.batch_size``
    (the last one may be smaller). The order comes from ``generator``: by default a torch
    generator seeded with ``settings.seed``; a caller that draws its own random numbers (flips,
    prompts) passes the generator it draws them from (a torch or a numpy one), so one seed
    decides the whole run. The epoch's mean loss weighs each batch by its size.
    ``cancel`` is checked before every batch; :class:`.progress.Cancelled` leaves the
    parameters as the last finished step left them.
    """
    if samples < 1:
        raise ValueError("no samples to train on")
    parameters = list(parameters)
    if not parameters:
        raise ValueError("no parameters to train")
    if generator is None:
        generator = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.AdamW(parameters, lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    epochs, batches = training_length(samples, settings)
    schedule = make_schedule(optimiser, settings, epochs * batches)
    losses: list[float] = []
    for epoch in range(epochs):
        order = _order(samples, generator)
        total, count = 0.0, 0
        for start in range(0, samples, settings.batch_size):
            check_cancel(cancel)
            index = order[start:start + settings.batch_size]
            loss = batch_loss(index)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
            count += len(index)
        losses.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs, losses[-1])
    return losses


def _order(samples: int, generator: torch.Generator | np.random.Generator) -> torch.Tensor:
    if isinstance(generator, np.random.Generator):
        return torch.from_numpy(generator.permutation(samples))
    return torch.randperm(samples, generator=generator)
