"""SAM-Mix's classification branch: a CNN trained on image-level tags with a focal loss.

A torchvision resnet18 trunk, trained from scratch (``weights=None``), on 3-channel inputs in
[0, 1] as :func:`.adl_classifier.image_tensor` makes them (grey repeated); global average pooling
of the last feature map and a linear head give one logit per class. SAM-Mix uses a ResNet-38 and
GradCAM; for a GAP + linear head GradCAM equals the class activation map (the head's weights
over the last feature map, :meth:`TagClassifier.cam`) up to a positive factor per sample, so the
normalised maps are the same (a test checks this against :func:`.gradcam.gradcam`).

``output_stride`` 16 (the default) sets layer4's stride to 1, so a 128 px input gives an 8×8 map
instead of 4×4; 8 does the same for layer3. Training: the binary focal loss of
``torchvision.ops.sigmoid_focal_loss`` on the tags, the plugin's training loop
(:mod:`..training_loop`), and the label-preserving flips and transposes of
:func:`.training.augment`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.ops import sigmoid_focal_loss

from ..method_settings import (
    CAM_VIEWS,
    OUTPUT_STRIDES,
    TAG_CLASSIFIER_TRUNKS,
    TagClassifierSettings,
)
from ..training_loop import LoopSettings, train_loop
from .adl_classifier import image_tensor
from .adl_training import recalibrate_batch_norm
from .gradcam import min_max, resize_maps
from .image_classifier import (
    DEFAULT_WIDTHS,
    LSE_SHARPNESS,
    local_features,
    lse_pool,
    standardise,
)
from .rotation_cam import dihedral_mean
from .training import augment

CHECKPOINT_FORMAT = "napari-weaksam tag classifier"
CHECKPOINT_VERSION = 1
LossCallback = Callable[[int, int, float], None]  # epoch, epochs, mean loss


class TagClassifier(nn.Module):
    """Logits (B, P) of P tags for (B, 3, S, S) images in [0, 1].

    ``trunk`` "resnet18": torchvision's, from scratch, global average pooling (SAM-Mix's shape;
    ``output_stride`` applies). "local": WeakMedSAM's local branch
    (:func:`.image_classifier.local_features`, a CAM at a quarter of the input's resolution,
    each cell seeing about a quarter of the image) with log-sum-exp pooling, so a small lesion
    can decide an image's tag. For either pooling GradCAM is the CAM up to a positive factor."""

    def __init__(self, num_classes: int, input_size: int = 128, output_stride: int = 16,
                 trunk: str = "resnet18") -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
        if trunk not in TAG_CLASSIFIER_TRUNKS:
            raise ValueError(f"trunk must be one of {tuple(TAG_CLASSIFIER_TRUNKS)}, got {trunk!r}")
        self.num_classes = int(num_classes)
        self.input_size = int(input_size)
        self.output_stride = int(output_stride)
        self.trunk_name = trunk
        if trunk == "local":
            self.trunk = local_features()
            self.fc = nn.Linear(DEFAULT_WIDTHS[-1], num_classes)
            return
        resnet = torchvision.models.resnet18(weights=None)
        if output_stride <= 16:
            _stride_one(resnet.layer4)
        if output_stride <= 8:
            _stride_one(resnet.layer3)
        self.trunk = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                   resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.fc = nn.Linear(resnet.fc.in_features, num_classes)

    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this model (then ``load_state_dict``)."""
        return {"num_classes": self.num_classes, "input_size": self.input_size,
                "output_stride": self.output_stride, "trunk": self.trunk_name}

    @property
    def cam_layer(self) -> nn.Module:
        """The module whose output is :meth:`features` (for :func:`.gradcam.gradcam`)."""
        return self.trunk

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) last feature map of (B, 3, S, S) images in [0, 1]."""
        if self.trunk_name == "local":
            return self.trunk(standardise(images))
        return self.trunk((images - 0.5) / 0.25)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._logits(self.features(images))

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        if self.trunk_name == "local":
            return lse_pool(self._class_maps(features), LSE_SHARPNESS) + self.fc.bias
        return self.fc(features.mean(dim=(2, 3)))

    def _class_maps(self, features: torch.Tensor) -> torch.Tensor:
        """The head's weights over (B, C, h, w) features: (B, P, h, w)."""
        return torch.einsum("pc,bchw->bphw", self.fc.weight, features)

    def cam(self, images: torch.Tensor) -> torch.Tensor:
        """Raw class activation maps (B, P, h, w): the head's weights over the last feature map
        (no bias, no ReLU, not normalised); their pooled value plus the bias is the logit.
        Differentiable."""
        return self._class_maps(self.features(images))

    def normalised_cam(self, images: torch.Tensor, size: tuple[int, int] | None = None,
                       views: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (B, P) and CAMs (B, P, H, W) in [0, 1]: ReLU, min–max per map, resized
        to ``size`` (the input's by default) — GradCAM's normalisation. ``views`` 8: the mean
        over the image's eight rotations and reflections (each raw map turned back first; the
        transforms it was trained with, so no single orientation decides the map), and the mean
        probability. Not tracked by autograd; call in eval mode."""
        if views not in CAM_VIEWS:
            raise ValueError(f"views must be one of {CAM_VIEWS}, got {views}")
        with torch.no_grad():
            if views == 1:
                probabilities, maps = self._probabilities_and_maps(images)
            else:
                pairs = [dihedral_mean(self._probabilities_and_maps, image) for image in images]
                probabilities = torch.stack([pair[0] for pair in pairs])
                maps = torch.stack([pair[1] for pair in pairs])
        maps = min_max(torch.relu(maps))
        return probabilities, resize_maps(maps, size or tuple(images.shape[-2:]))

    def _probabilities_and_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (B, P) and raw CAMs (B, P, h, w) from one pass over the trunk."""
        features = self.features(images)
        return torch.sigmoid(self._logits(features)), self._class_maps(features)


def _stride_one(layer: nn.Module) -> None:
    """Every strided convolution of a ResNet stage (and its shortcut) at stride 1."""
    for module in layer.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (1, 1)


def build_tag_classifier(num_classes: int, settings: TagClassifierSettings) -> TagClassifier:
    """A fresh classifier as ``settings`` describe it (weights from torch's current seed)."""
    return TagClassifier(num_classes, input_size=settings.input_size,
                         output_stride=settings.output_stride, trunk=settings.trunk)


def tag_inputs(images: Iterable[np.ndarray], size: int) -> torch.Tensor:
    """Grey or RGB images of any size and dtype → one (N, 3, size, size) float16 batch in [0, 1]
    (:func:`.adl_classifier.image_tensor`; float16 halves the memory of a large set)."""
    return torch.stack([image_tensor(image, size).half() for image in images])


def focal_loss(logits: torch.Tensor, targets: torch.Tensor,
               settings: TagClassifierSettings) -> torch.Tensor:
    """Mean binary focal loss over samples and classes (torchvision's)."""
    return sigmoid_focal_loss(logits, targets, alpha=settings.focal_alpha,
                              gamma=settings.focal_gamma, reduction="mean")


def train_tag_classifier(images: torch.Tensor, labels: np.ndarray,
                         settings: TagClassifierSettings, *,
                         device: torch.device | str = "cpu",
                         on_epoch: LossCallback | None = None,
                         cancel: threading.Event | None = None,
                         ) -> tuple[TagClassifier, list[float]]:
    """Fit a fresh :class:`TagClassifier` (initialised under ``settings.seed``) on (N, 3, S, S)
    square images in [0, 1] (kept where they are, moved per batch) and (N, P) {0, 1} tags; each
    sample is flipped along each axis and transposed with p = ½ (all eight rotations and
    reflections). With ``settings.recalibrate_batch_norm`` the batch-norm statistics are then
    recomputed over the (unaugmented) training images. Returns the model in eval mode on
    ``device`` and the mean loss per epoch."""
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2:
        raise ValueError(f"expected (N, P) tags, got shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label rows")
    if len(labels) == 0:
        raise ValueError("no items to train on")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected (N, 3, S, S) images, got shape {tuple(images.shape)}")
    if images.shape[-1] != settings.input_size:
        raise ValueError(f"the images are {images.shape[-1]} px, the settings say input_size "
                         f"{settings.input_size}")
    torch.manual_seed(settings.seed)
    model = build_tag_classifier(labels.shape[1], settings).to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    targets = torch.from_numpy(labels)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        batch = augment(images[index].float(), generator, (-1, -2), True).to(device)
        return focal_loss(model(batch), targets[index].to(device), settings)

    loop = LoopSettings(epochs=settings.epochs, batch_size=settings.batch_size,
                        learning_rate=settings.learning_rate,
                        weight_decay=settings.weight_decay, min_steps=settings.min_steps,
                        seed=settings.seed, schedule=settings.schedule)
    model.train()
    losses = train_loop(model.parameters(), len(labels), batch_loss, loop, generator=generator,
                        on_epoch=on_epoch, cancel=cancel)
    if settings.recalibrate_batch_norm:
        recalibrate_batch_norm(model, images, settings.batch_size, device=device, cancel=cancel)
    return model.eval(), losses


def checkpoint(model: TagClassifier, settings: TagClassifierSettings | None = None,
               ) -> dict[str, Any]:
    """A dict to ``torch.save``: the model's config, its weights (on the CPU) and the settings
    it was trained with; ``torch.load(..., weights_only=True)`` reads it back."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "config": model.config(),
            "settings": None if settings is None else settings.to_dict(),
            "state": {name: value.detach().cpu().clone()
                      for name, value in model.state_dict().items()}}


def from_checkpoint(saved: dict[str, Any], device: torch.device | str = "cpu",
                    ) -> tuple[TagClassifier, TagClassifierSettings | None]:
    """The model (eval mode, on ``device``) and settings of a :func:`checkpoint` dict."""
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not a tag-classifier checkpoint")
    if saved.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"tag-classifier checkpoint version {saved.get('version')!r}; this "
                         f"version reads {CHECKPOINT_VERSION}")
    model = TagClassifier(**saved["config"])
    model.load_state_dict(saved["state"], strict=True)
    settings = saved.get("settings")
    return (model.to(device).eval(),
            None if settings is None else TagClassifierSettings(**settings))
