"""A pixel classifier on frozen SAM embeddings: where each class is, learnt from people's masks
and from the tags together.

It maps an embedding (C, h, w) to one logit per class and embedding cell. Three kinds of
supervision train it (:mod:`..retrain.corrections`): a person's mask gives every cell its target
(the share of the cell the mask covers); an item tagged without a class says that no cell of it
has the class; an item tagged with the class but not reviewed says that some do (its top-k cells,
pooled, are pushed up: multiple-instance learning). The encoder stays frozen, so it trains on
the cached embeddings in seconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

#: The share of an item's valid cells pooled for its presence logit: a lesion covers a few of
#: the 64 × 64 cells (a 500 px tumour on a 256² slice is about 30 cells), so pooling the top 1 %
#: asks for "some cells", not "the whole image", and is not one noisy maximum either.
TOP_SHARE = 0.01


class MaskHead(nn.Module):
    """Per-class cell logits (B, P, h, w) from embeddings (B, C, h, w) and, with ``prior``,
    a method's proposal (B, P, h, w): the share of each cell it gave each class."""

    def __init__(self, classes: int, in_channels: int = 256, hidden: int = 32,
                 prior: bool = False, depth: int = 1) -> None:
        super().__init__()
        self.prior = prior
        self.features = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.GELU())
        self.net = nn.Sequential(
            # 3 × 3: a cell's neighbours decide with it (a lesion's edge, a lone bright cell)
            nn.Conv2d(hidden + (classes if prior else 0), hidden, 3, padding=1), nn.GELU(),
            # more context: residual 3 × 3 blocks, each seeing twice as far (dilation 2, 4, …)
            *(_Residual(nn.Conv2d(hidden, hidden, 3, padding=2 ** d, dilation=2 ** d))
              for d in range(1, depth)),
            nn.Conv2d(hidden, classes, 1),
        )
        # SAM embeddings are small (std ≈ 0.1) and alike between images: standardise each
        # channel with statistics of the project's embeddings, saved with the weights
        self.register_buffer("input_mean", torch.zeros(in_channels))
        self.register_buffer("input_std", torch.ones(in_channels))

    @property
    def classes(self) -> int:
        return self.net[-1].out_channels

    @property
    def in_channels(self) -> int:
        return self.features[0].in_channels

    @property
    def depth(self) -> int:
        return len(self.net) - 2

    @property
    def hidden(self) -> int:
        return self.features[0].out_channels

    def set_input_statistics(self, embeddings: torch.Tensor) -> None:
        """Per-channel mean and std over (N, C, h, w) embeddings."""
        flat = embeddings.float().transpose(0, 1).reshape(embeddings.shape[1], -1)
        self.input_mean.copy_(flat.mean(dim=1))
        self.input_std.copy_(flat.std(dim=1).clamp(min=1e-6))

    def forward(self, embeddings: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        mean, std = self.input_mean[:, None, None], self.input_std[:, None, None]
        features = self.features((embeddings.float() - mean) / std)
        if self.prior:
            if prior is None:
                raise ValueError("this head reads a method's proposals: give them as prior")
            features = torch.cat([features, prior.float()], dim=1)
        return self.net(features)


class _Residual(nn.Module):
    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + torch.nn.functional.gelu(self.conv(features))


def presence_logits(logits: torch.Tensor, valid: torch.Tensor,
                    share: float = TOP_SHARE) -> torch.Tensor:
    """(B, P) presence logits: the mean of each map's top ``share`` of valid cells (at least
    one). ``valid``: (B, h, w) bool, the cells that hold the image (not the padding)."""
    masked = logits.masked_fill(~valid[:, None], float("-inf")).flatten(2)
    counts = valid.flatten(1).sum(dim=1)
    k = max(1, int(round(share * int(counts.max()))))
    top = masked.topk(k, dim=2).values
    finite = torch.isfinite(top)   # an item with fewer valid cells than k
    return top.masked_fill(~finite, 0.0).sum(dim=2) / finite.sum(dim=2).clamp(min=1)


def head_config(head: MaskHead) -> dict[str, int | bool]:
    """What rebuilds ``head`` (stored with its weights)."""
    return {"classes": head.classes, "in_channels": head.in_channels, "hidden": head.hidden,
            "prior": head.prior, "depth": head.depth}
