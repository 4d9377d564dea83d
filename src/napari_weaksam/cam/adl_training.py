"""Training the Enhanced-ADL classifier from scratch: seeded, cancellable, class-balanced BCE."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..method_settings import AdlTraining
from ..progress import check_cancel
from ..training_loop import LoopSettings, train_loop
from .adl_classifier import AdlClassifier

LossCallback = Callable[[int, int, float], None]  # epoch, epochs, mean loss


def train_adl_classifier(images: torch.Tensor, labels: np.ndarray, settings: AdlTraining, *,
                         device: torch.device | str = "cpu",
                         on_epoch: LossCallback | None = None,
                         cancel: threading.Event | None = None) -> AdlClassifier:
    """Fit on (N, 3, S, S) images in [0, 1] (kept on the CPU, moved per batch) and (N, P) {0, 1}
    tags; returns the model in eval mode on ``device``."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label rows")
    if len(labels) == 0:
        raise ValueError("no items to train on")
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model = AdlClassifier(labels.shape[1], arch=settings.arch,
                          high_pass_radius=settings.high_pass_radius,
                          input_size=settings.input_size,
                          adl_drop_rate=settings.adl_drop_rate).to(device)
    targets = torch.as_tensor(labels, dtype=torch.float32)
    bce = nn.BCEWithLogitsLoss(pos_weight=positive_weight(targets).to(device))

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        batch = augment(images[index].float(), generator, device)
        return bce(model(batch), targets[index].to(device))

    def epoch_done(epoch: int, epochs: int, loss: float) -> None:
        settings.losses.append(loss)
        if on_epoch is not None:
            on_epoch(epoch, epochs, loss)

    loop = LoopSettings(epochs=settings.epochs, batch_size=settings.batch_size,
                        learning_rate=settings.learning_rate,
                        weight_decay=settings.weight_decay, seed=settings.seed,
                        schedule="one-cycle")
    model.train()
    train_loop(model.parameters(), len(labels), batch_loss, loop, generator=generator,
               on_epoch=epoch_done, cancel=cancel)
    if settings.recalibrate_batch_norm:
        recalibrate_batch_norm(model, images, settings.batch_size, device=device, cancel=cancel)
    return model.eval()


def recalibrate_batch_norm(model: AdlClassifier, images: torch.Tensor, batch_size: int, *,
                           device: torch.device | str = "cpu",
                           cancel: threading.Event | None = None) -> None:
    """Recompute the batch-norm running statistics over ``images`` without attention dropout.

    ADL scales features during training only (by the importance map or the drop mask), so the
    statistics gathered then do not match eval-mode features and a well-trained model can predict
    one class for everything; one pass with ADL off and a cumulative average fixes that.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            check_cancel(cancel)
            model(images[start:start + batch_size].float().to(device))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


def positive_weight(targets: torch.Tensor) -> torch.Tensor:
    """Negatives / positives per class, clamped to [0.1, 10] (a class never or always present
    gets a bound)."""
    positives = targets.sum(dim=0)
    negatives = len(targets) - positives
    return (negatives / positives).nan_to_num(1.0).clamp(0.1, 10.0)


def augment(batch: torch.Tensor, generator: torch.Generator,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """Random flips, multiple-of-90° rotations and ±0.2 brightness / contrast of square
    (B, 3, S, S) images in [0, 1]; parameters are drawn from ``generator`` on the CPU."""
    count = len(batch)
    h_flip = torch.rand(count, generator=generator) < 0.5
    v_flip = torch.rand(count, generator=generator) < 0.5
    turns = torch.randint(0, 4, (count,), generator=generator)
    brightness = 1.0 + (torch.rand(count, generator=generator) * 0.4 - 0.2)
    contrast = 1.0 + (torch.rand(count, generator=generator) * 0.4 - 0.2)
    batch = batch.to(device)
    batch = torch.where(h_flip.to(device)[:, None, None, None], batch.flip(-1), batch)
    batch = torch.where(v_flip.to(device)[:, None, None, None], batch.flip(-2), batch)
    for k in range(1, 4):
        chosen = turns == k
        if chosen.any():
            chosen = chosen.to(device)
            batch[chosen] = torch.rot90(batch[chosen], k, dims=(-2, -1))
    batch = batch * brightness.to(device)[:, None, None, None]
    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    batch = (batch - mean) * contrast.to(device)[:, None, None, None] + mean
    return batch.clamp(0.0, 1.0)
