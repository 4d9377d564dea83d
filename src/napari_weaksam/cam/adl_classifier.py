"""The Enhanced-ADL image classifier of EP-SAM, trained from scratch on the tagged images.

A ResNet whose input is RGB plus a high-pass channel, with layer4 at stride 1 (no dilation) so the
class activation map (CAM) has a stride of 16, and attention-based dropout after layer3's first
block and after layer4's first and last blocks. No pretrained weights are used.

``adl_drop_rate`` is EP-SAM's 0.75 by default. On small inputs (64–128 px, where every layer4
position sees the whole image) the drop branch can move the class evidence away from the object
and invert the CAM; 0 keeps only the importance-map branch, whose CAMs localise reliably there.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..backbones.sam import to_rgb_float
from .attention_dropout import AttentionDropout
from .high_pass import with_high_pass

ARCHITECTURES = ("resnet50", "resnet18")


class AdlClassifier(nn.Module):
    """Logits (B, P) of the P tags for (B, 3, S, S) images in [0, 1]."""

    def __init__(self, num_classes: int, arch: str = "resnet50", high_pass_radius: float = 4.0,
                 input_size: int = 512, adl_drop_rate: float = 0.75) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.arch = arch
        self.high_pass_radius = float(high_pass_radius)
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)
        self.adl_drop_rate = float(adl_drop_rate)
        resnet = getattr(torchvision.models, arch)(weights=None)
        _stride_one(resnet.layer4[0])
        self.stem = nn.Sequential(nn.Conv2d(4, 64, 7, stride=2, padding=3, bias=False),
                                  resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = nn.Sequential(resnet.layer3[0], self._adl(), *resnet.layer3[1:])
        self.layer4 = nn.Sequential(resnet.layer4[0], self._adl(), *resnet.layer4[1:],
                                    self._adl())
        self.fc = nn.Linear(resnet.fc.in_features, num_classes)
        self._initialise()

    def config(self) -> dict:
        """Keyword arguments that rebuild this model (then ``load_state_dict``)."""
        return {"num_classes": self.num_classes, "arch": self.arch,
                "high_pass_radius": self.high_pass_radius, "input_size": self.input_size,
                "adl_drop_rate": self.adl_drop_rate}

    def _adl(self) -> AttentionDropout:
        return AttentionDropout(drop_rate=self.adl_drop_rate)

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def _head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the output of layer4's first block."""
        return self.fc(self.layer4[1:](features).mean(dim=(2, 3)))

    def cam_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, S/16, S/16) output of layer4's first block, where EP-SAM takes its CAM. In eval
        mode no attention dropout is applied (in train mode the one after layer3[0] would be)."""
        x = self.stem(with_high_pass(images, self.high_pass_radius))
        return self.layer4[0](self.layer3(self.layer2(self.layer1(x))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._head(self.cam_features(images))

    def cam(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (B, P) and raw CAMs (B, P, h, w) = ReLU(fc weights · cam_features), not
        normalised. Call in eval mode; gradients are not tracked here."""
        with torch.no_grad():
            features = self.cam_features(images)
            probabilities = torch.sigmoid(self._head(features))
            maps = torch.einsum("pc,bchw->bphw", self.fc.weight, features)
        return probabilities, F.relu(maps)


def _stride_one(block: nn.Module) -> None:
    """Set every strided convolution of a ResNet block (and its shortcut) to stride 1."""
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (1, 1)


def image_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """A grey or RGB(A) image of any dtype → (3, size, size) float32 in [0, 1]: uint8 ÷ 255,
    other dtypes min–max per image (a constant image gives zeros)."""
    rgb = to_rgb_float(image)
    if not np.isfinite(rgb).all():
        raise ValueError("the image contains NaN or infinite values")
    if np.asarray(image).dtype == np.uint8:
        rgb = rgb / 255.0
    else:
        low, high = float(rgb.min()), float(rgb.max())
        rgb = (rgb - low) / (high - low) if high > low else np.zeros_like(rgb)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    resized = F.interpolate(tensor[None], size=(size, size), mode="bilinear", antialias=True,
                            align_corners=False)
    return resized[0].clamp(0.0, 1.0)
