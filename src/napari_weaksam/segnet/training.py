"""What trains the segmentation network: images, targets and their weights, and the loss.

Every item with something to say about its pixels trains it. A reviewed mask sets every pixel
(weight 1); an item tagged without a class says no pixel has it (weight 1); for every other
class the source round proposed, its proposal is the target, weighed ``pseudo_weight`` × the
proposal's confidence (when ``confidence_weighting``): a pseudo-label the method itself doubts
teaches less. A class tagged present that the round left empty has no target (weight 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..method_settings import SegNetSettings
from ..methods.tag_presence import tagged_presence
from ..project import ImageClass, Item

#: The eight flips and quarter turns of a square: a lesion's class does not depend on them.
DIHEDRAL = 8


@dataclass
class SegNetData:
    """Per item (N) and class (P): the network's training set."""

    inputs: torch.Tensor   # (N, 3, S, S) float16 in [0, 1]
    targets: torch.Tensor  # (N, P, S, S) float16: share of each pixel that is the class
    weight: torch.Tensor   # (N, P) how much each target counts (0: unknown)

    def teaching(self) -> torch.Tensor:
        """Indices of the items with at least one known target."""
        return (self.weight.sum(dim=1) > 0).nonzero()[:, 0]


def class_targets(label: np.ndarray, classes: list[ImageClass], size: int) -> torch.Tensor:
    """(P, size, size): the share of each network pixel a label image gives each class."""
    masks = torch.stack([torch.from_numpy(label == c.label_value) for c in classes]).float()
    return F.interpolate(masks[None], size=(size, size), mode="area")[0]


def target_weights(item: Item, tags: dict[int, set[int]], classes: list[ImageClass],
                   proposal: np.ndarray | None, confidence: float | None,
                   settings: SegNetSettings) -> np.ndarray:
    """(P,) the weight of each class's target for an item nobody reviewed (see the module
    docstring): 1 tagged absent, the pseudo-label's weight where the round gave the class (or,
    on an untagged item, where it said the class is absent), 0 where nothing is known."""
    tagged = tagged_presence(item, tags, classes)
    pseudo = settings.pseudo_weight
    if settings.confidence_weighting and confidence is not None:
        pseudo *= float(np.clip(confidence, 0.0, 1.0))
    weights = np.zeros(len(classes))
    for c, image_class in enumerate(classes):
        said = proposal is not None and bool((proposal == image_class.label_value).any())
        if tagged is not None and not tagged[c]:
            weights[c] = 1.0
        elif said or (tagged is None and proposal is not None):
            weights[c] = pseudo
    return weights


def batch_loss(network: torch.nn.Module, data: SegNetData, index: torch.Tensor,
               turns: torch.Tensor, autocast: torch.dtype | None = None) -> torch.Tensor:
    """Weighted pixel BCE on every known map, plus the soft Dice of the maps that hold the
    class; ``turns`` (B,) picks each sample's flip / quarter turn (0–7); ``autocast``: the
    network's forward pass in that precision (the loss stays float32)."""
    device = next(network.parameters()).device
    inputs = augment(data.inputs[index].float(), turns).to(device)
    targets = augment(data.targets[index].float(), turns).to(device)
    weight = data.weight[index].to(device)
    with torch.autocast(device.type, dtype=autocast or torch.float32,
                        enabled=autocast is not None):
        logits = network(inputs)
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=(2, 3))
    loss = (bce * weight).sum() / weight.sum().clamp(min=1e-6)
    has = (targets.sum(dim=(2, 3)) > 0).float() * weight
    if has.any():
        probability = torch.sigmoid(logits)
        overlap = (probability * targets).sum(dim=(2, 3))
        total = probability.sum(dim=(2, 3)) + targets.sum(dim=(2, 3))
        loss = loss + ((1 - (2 * overlap + 1) / (total + 1)) * has).sum() / has.sum()
    return loss


def augment(batch: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Each sample (B, C, S, S) flipped and turned as ``turns`` (B,) says: bit 2 flips left–right,
    the low bits turn by quarter turns."""
    out = []
    for sample, turn in zip(batch, turns.tolist(), strict=True):
        if turn & 4:
            sample = sample.flip(-1)
        out.append(torch.rot90(sample, turn & 3, dims=(-2, -1)))
    return torch.stack(out)
