"""A small fully convolutional classifier on the image: WeakMedSAM's local CAM branch.

The original WeakMedSAM adds a convolutional branch on the image to its SAM encoder, because
ViT tokens mix information across the whole image. Frozen LiteMedSAM embeddings show the same
problem (a head on them learns where in the body a slice is, not where the lesion is), so the CAM
comes from this branch: a few convolutions (stride 4, then dilated, so the CAM keeps a quarter of
the input's resolution and a receptive field of about a quarter of the image), a parent head and a
sub-class head (1×1 convolutions), and log-sum-exp pooling, which lets a small lesion decide a
slice's class without the whole image having to look positive.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DEFAULT_WIDTHS = (24, 48, 96, 128)
LSE_SHARPNESS = 5.0   # log-sum-exp pooling: between the mean (→ 0) and the max (→ ∞)


def lse_pool(maps: torch.Tensor, sharpness: float) -> torch.Tensor:
    """Log-sum-exp pooling over (h, w): between the mean (sharpness → 0) and the max (→ ∞)."""
    flat = maps.flatten(2)
    return (torch.logsumexp(sharpness * flat, dim=2) - math.log(flat.shape[2])) / sharpness


def _conv(inputs: int, outputs: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


def local_features(widths: tuple[int, ...] = DEFAULT_WIDTHS) -> nn.Sequential:
    """The branch's convolutions: (B, 3, S, S) → (B, widths[-1], S/4, S/4); two strided, then
    dilated, so each output cell sees about a quarter of the image."""
    w1, w2, w3, w4 = widths
    return nn.Sequential(
        _conv(3, w1, stride=2), _conv(w1, w2, stride=2), _conv(w2, w2),
        _conv(w2, w3, dilation=2), _conv(w3, w3, dilation=2), _conv(w3, w4, dilation=2),
    )


def standardise(images: torch.Tensor) -> torch.Tensor:
    """Each image and channel to mean 0, std 1: scanners and stains differ in brightness."""
    mean = images.mean(dim=(2, 3), keepdim=True)
    std = images.std(dim=(2, 3), keepdim=True)
    return (images - mean) / (std + 1e-3)


class ImageCamClassifier(nn.Module):
    """Parent logits (B, P), sub-class logits (B, P·K + 1) and CAMs (B, P, S/4, S/4) from
    (B, 3, S, S) images in [0, 1]."""

    def __init__(self, classes: int, subclasses: int,
                 widths: tuple[int, ...] = DEFAULT_WIDTHS,
                 sharpness: float = LSE_SHARPNESS) -> None:
        super().__init__()
        self.features = local_features(widths)
        self.parent = nn.Conv2d(widths[-1], classes, 1)
        self.child = nn.Conv2d(widths[-1], subclasses, 1)
        self.sharpness = sharpness
        self._config = {"classes": classes, "subclasses": subclasses,
                        "widths": list(widths), "sharpness": sharpness}

    def config(self) -> dict:
        """The constructor's arguments, saved with the weights."""
        return dict(self._config)

    def _maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(standardise(images))
        return self.parent(features), self.child(features)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parent, child = self._maps(images)
        return lse_pool(parent, self.sharpness), lse_pool(child, self.sharpness)

    @torch.no_grad()
    def cam(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Presence probabilities (B, P) and raw CAMs (B, P, h, w), before normalisation."""
        parent, _child = self._maps(images)
        return torch.sigmoid(lse_pool(parent, self.sharpness)), parent
