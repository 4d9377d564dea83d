"""GradCAM for any convolutional classifier, and SAM-Mix's prompts from a GradCAM.

GradCAM (Selvaraju et al.): the gradient of one class logit with respect to a chosen layer's
feature map (B, C, h, w); each channel is weighted by the spatial mean of its gradient, the
weighted sum is passed through a ReLU, min–max normalised per sample to [0, 1] and resized to
the input (or item) size. Call it with the model in eval mode: in train mode batch norm couples
the samples of a batch, so one sample's map would depend on the others.

SAM-Mix (and the authors' ADA-SAM code) threshold the map at 0.4 and prompt SAM with the mask's
bounding box, falling back to the central box (W/4, H/4, 3W/4, 3H/4) when no pixel survives
(:func:`cam_prompts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Target = int | Sequence[int] | torch.Tensor
OutputSelector = Callable[[Any], torch.Tensor]


def gradcam(model: nn.Module, layer: nn.Module, images: torch.Tensor, target: Target = 0, *,
            size: tuple[int, int] | None = None,
            logits: OutputSelector | None = None) -> torch.Tensor:
    """(B, H, W) GradCAMs in [0, 1] of (B, C, S, S) ``images`` for class ``target`` (one class
    for all, or one per sample), taken at the output of ``layer`` (a module of ``model`` that
    runs once per forward and returns a (B, C, h, w) tensor). ``size``: the (H, W) of the result,
    the images' own size by default. ``logits``: picks the (B, P) logits from the model's output
    (default: the output itself, or its first element when it is a tuple or list).

    The maps are detached; neither the model's parameters' ``.grad`` nor its mode are touched,
    and the hook is removed whatever happens. Needs autograd: not under ``torch.inference_mode``
    (``torch.no_grad`` is fine)."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError("gradcam needs autograd: call it outside torch.inference_mode")
    features = _FeatureGrab()
    handle = layer.register_forward_hook(features)
    try:
        with torch.enable_grad():
            output = model(images)
            scores = (logits or _first)(output)
            if scores.ndim != 2 or len(scores) != len(images):
                raise ValueError(f"expected (B, P) logits for {len(images)} images, "
                                 f"got {tuple(scores.shape)}")
            feature_map = features.value()
            chosen = _targets(target, scores.shape, scores.device)
            score = scores.gather(1, chosen[:, None]).sum()
            (gradient,) = torch.autograd.grad(score, feature_map)
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    maps = F.relu((weights * feature_map.detach()).sum(dim=1))
    return resize_maps(min_max(maps), size or tuple(images.shape[-2:]))


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each (…, h, w) map scaled to [0, 1] by its own minimum and maximum; a constant map gives
    zeros."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.clamp(min=torch.finfo(maps.dtype).tiny),
                       torch.zeros_like(maps))


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) or (B, P, h, w) maps in [0, 1] → the same at ``size``, bilinear (pixel
    centres aligned as in torch's ``align_corners=False``), still in [0, 1]."""
    size = (int(size[0]), int(size[1]))
    if tuple(maps.shape[-2:]) == size:
        return maps
    flat = maps.reshape(-1, 1, *maps.shape[-2:]).float()
    resized = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return resized.reshape(*maps.shape[:-2], *size).clamp(0.0, 1.0).to(maps.dtype)


def cam_prompts(maps: np.ndarray | torch.Tensor, threshold: float = 0.4,
                ) -> tuple[np.ndarray, np.ndarray]:
    """SAM-Mix's prompts from (B, H, W) normalised CAMs: the masks ``map ≥ threshold`` (B, H, W)
    bool and one box per map (B, 4) float32 (x₁, y₁, x₂, y₂) in pixel edges, the mask's bounding
    box, or the central box (W/4, H/4, 3W/4, 3H/4) when the mask is empty."""
    maps = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"expected (B, H, W) maps, got shape {maps.shape}")
    masks = maps >= threshold
    height, width = maps.shape[1:]
    boxes = np.empty((len(maps), 4), dtype=np.float32)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows) == 0:
            boxes[i] = (width / 4, height / 4, 3 * width / 4, 3 * height / 4)
        else:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return masks, boxes


class _FeatureGrab:
    """A forward hook that keeps the layer's output as a leaf that requires grad (so frozen
    models work too) and makes the rest of the model run on a copy of it (in-place operations
    after the layer, such as ``ReLU(inplace=True)``, then leave the kept map alone)."""

    def __init__(self) -> None:
        self.outputs: list[torch.Tensor] = []

    def __call__(self, _module: nn.Module, _inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise ValueError("the GradCAM layer must return a (B, C, h, w) tensor")
        leaf = output.detach().requires_grad_(True)
        self.outputs.append(leaf)
        return leaf.clone()

    def value(self) -> torch.Tensor:
        if len(self.outputs) != 1:
            raise ValueError(f"the GradCAM layer ran {len(self.outputs)} times in one forward "
                             "pass; expected once")
        return self.outputs[0]


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple | list) else output


def _targets(target: Target, shape: torch.Size, device: torch.device) -> torch.Tensor:
    count, classes = shape
    chosen = torch.as_tensor(target, dtype=torch.int64, device=device)
    if chosen.ndim == 0:
        chosen = chosen.expand(count)
    if chosen.shape != (count,):
        raise ValueError(f"expected one target class or {count}, got shape {tuple(chosen.shape)}")
    if chosen.min() < 0 or chosen.max() >= classes:
        raise ValueError(f"target classes must lie in 0..{classes - 1}")
    return chosen
