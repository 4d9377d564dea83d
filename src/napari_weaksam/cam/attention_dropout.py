"""Attention-based dropout (ADL): hides the most discriminative region during training, so the
classifier also learns from the less obvious parts of an object and its CAM covers more of it."""

from __future__ import annotations

import torch
from torch import nn


class AttentionDropout(nn.Module):
    """Identity in eval mode. In train mode one draw per call picks, with probability
    ``drop_rate``, the drop mask (0 where the channel-mean attention ≥ ``threshold`` · its
    per-sample maximum) and otherwise the importance map sigmoid(attention)."""

    def __init__(self, drop_rate: float = 0.75, threshold: float = 0.8) -> None:
        super().__init__()
        self.drop_rate = drop_rate
        self.threshold = threshold

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        attention = features.mean(dim=1, keepdim=True)
        if torch.rand(()).item() < self.drop_rate:
            peak = attention.amax(dim=(2, 3), keepdim=True)
            return features * (attention < self.threshold * peak).to(features.dtype)
        return features * torch.sigmoid(attention)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, threshold={self.threshold}"
