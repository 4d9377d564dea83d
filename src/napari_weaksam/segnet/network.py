"""The segmentation network: MONAI's ``BasicUNet`` on the image, one logit map per class.

WeakMedSAM's authors train a 2D U-Net on their pseudo-labels and report its masks as the method's
result: a network that sees every item learns what the pseudo-labels agree on and averages out
what each gets wrong. It also segments a new image in one forward pass, without SAM.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cam.adl_classifier import image_tensor
from ..cam.mask_head import presence_logits


def build_network(classes: int, features: tuple[int, ...]) -> nn.Module:
    """A 2D U-Net from (B, 3, S, S) images in [0, 1] to (B, classes, S, S) logits
    (S: a multiple of 16 keeps every level aligned); ``features``: the widths of the
    encoder's five levels and of the last decoder level."""
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=3, out_channels=classes,
                     features=tuple(features), norm=("instance", {"affine": True}))


def network_config(classes: int, size: int, features: tuple[int, ...]) -> dict:
    """What rebuilds the network (stored with its weights)."""
    return {"classes": classes, "size": size, "features": list(features)}


def network_input(image: np.ndarray, size: int) -> torch.Tensor:
    """An item's image as the network's (3, size, size) input (grey repeated, [0, 1])."""
    return image_tensor(image, size)


def predicted_maps(network: nn.Module, inputs: torch.Tensor, shape: tuple[int, int],
                   autocast: torch.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Presence probabilities (P,) and probability maps (P, H, W) at the item's ``shape`` for
    one (3, S, S) input: the mean of the four flips (test-time augmentation); ``autocast``: the
    forward pass in that precision, as in training."""
    device = next(network.parameters()).device
    with torch.inference_mode():
        inputs = inputs.to(device)
        batch = torch.stack([inputs, inputs.flip(-1), inputs.flip(-2), inputs.flip(-1, -2)])
        with torch.autocast(device.type, dtype=autocast or torch.float32,
                            enabled=autocast is not None):
            logits = network(batch).float()
        logits = torch.stack([logits[0], logits[1].flip(-1), logits[2].flip(-2),
                              logits[3].flip(-1, -2)]).mean(dim=0)
        valid = torch.ones((1, *logits.shape[-2:]), dtype=torch.bool)
        presence = torch.sigmoid(presence_logits(logits[None], valid))[0]
        maps = torch.sigmoid(F.interpolate(logits[None].float(), size=shape, mode="bilinear",
                                           align_corners=False))[0]
    return presence.cpu().numpy(), maps.cpu().numpy()
