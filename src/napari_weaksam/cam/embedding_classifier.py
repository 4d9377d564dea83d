"""A classifier on frozen SAM embeddings with a parent head and a sub-class head.

The encoder stays frozen, so training runs on cached embeddings and is fast on a CPU. A 1×1
convolutional adapter turns the embedding into class-discriminative features; the parent head is a
1×1 convolution whose global average is the class logit, so applying it per position gives the
class activation map (CAM).
"""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingClassifier(nn.Module):
    """Parent logits (B, P), sub-class logits (B, P·K + 1) and CAMs (B, P, h, w)."""

    def __init__(self, classes: int, subclasses: int, in_channels: int = 256,
                 hidden: int = 128) -> None:
        super().__init__()
        # per-position only (1×1): cheap on a CPU, and the CAM keeps the embedding's resolution
        self.adapter = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.GELU())
        self.parent = nn.Conv2d(hidden, classes, 1, bias=False)
        self.child = nn.Conv2d(hidden, subclasses, 1, bias=False)
        self.parent_bias = nn.Parameter(torch.zeros(classes))
        self.child_bias = nn.Parameter(torch.zeros(subclasses))
        # SAM embeddings are small (std ≈ 0.1) and alike between images: standardise each
        # channel with statistics of the training set, saved with the weights
        self.register_buffer("input_mean", torch.zeros(in_channels))
        self.register_buffer("input_std", torch.ones(in_channels))

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> EmbeddingClassifier:
        """The classifier whose weights ``state`` holds (its sizes read from their shapes)."""
        hidden, in_channels = state["adapter.0.weight"].shape[:2]
        model = cls(state["parent.weight"].shape[0], state["child.weight"].shape[0],
                    in_channels=in_channels, hidden=hidden)
        model.load_state_dict(state, strict=True)
        return model

    def set_input_statistics(self, embeddings: torch.Tensor) -> None:
        """Per-channel mean and std over (N, C, h, w) training embeddings."""
        flat = embeddings.float().transpose(0, 1).reshape(embeddings.shape[1], -1)
        self.input_mean.copy_(flat.mean(dim=1))
        self.input_std.copy_(flat.std(dim=1).clamp(min=1e-6))

    def _features(self, embeddings: torch.Tensor) -> torch.Tensor:
        scaled = (embeddings - self.input_mean[:, None, None]) / self.input_std[:, None, None]
        return self.adapter(scaled)

    def forward(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self._features(embeddings)
        parent = self.parent(features).mean(dim=(2, 3)) + self.parent_bias
        child = self.child(features).mean(dim=(2, 3)) + self.child_bias
        return parent, child

    @torch.no_grad()
    def cam(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Presence probabilities (B, P) and raw CAMs (B, P, h, w), before normalisation."""
        features = self._features(embeddings)
        maps = self.parent(features)
        logits = maps.mean(dim=(2, 3)) + self.parent_bias
        return torch.sigmoid(logits), maps


def normalise_cam(maps: torch.Tensor, valid: tuple[int, int] | None = None,
                  eps: float = 1e-6) -> torch.Tensor:
    """Min–max each (…, h, w) map to [0, 1] over its ``valid`` top-left region (the image, not
    the padding); ``(x − min + ε) / (max − min + ε)``."""
    region = maps if valid is None else maps[..., : valid[0], : valid[1]]
    low = region.amin(dim=(-2, -1), keepdim=True)
    high = region.amax(dim=(-2, -1), keepdim=True)
    return ((maps - low + eps) / (high - low + eps)).clamp(0.0, 1.0)
