"""CAMs averaged over an image's 90° rotations (EP-SAM's Enhanced-ADL) or over all eight rotations
and reflections (WeakMedSAM's image branch), and EP-SAM's initial mask from a CAM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from skimage.morphology import isotropic_opening

from .adl_classifier import AdlClassifier
from .image_classifier import ImageCamClassifier

Pose = tuple[bool, int]   # (transposed first, quarter turns)
CamFunction = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def rotation_cam(model: AdlClassifier, image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (P,) of the unrotated (3, S, S) image and its CAMs (P, h, w) in [0, 1]: the
    mean over the four 90° rotations, each map min–max normalised and rotated back. The model
    must be in eval mode."""
    device = next(model.parameters()).device
    image = image.to(device=device, dtype=torch.float32)
    with torch.inference_mode():
        batch, poses = _views(image, reflect=False)
        probabilities, maps = model.cam(batch)
        cams = _restored_mean(_min_max(maps), poses)
    return (probabilities[0].float().cpu().numpy(),
            cams.float().cpu().numpy().astype(np.float32))


def dihedral_cam(model: ImageCamClassifier, image: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Presence probabilities (P,) and raw CAMs (P, h, w) of a (3, S, S) image, averaged over
    its eight rotations and reflections (each CAM turned back first): the transforms the
    classifier was trained with, so no single orientation decides the map."""
    return dihedral_mean(model.cam, image)


def dihedral_mean(cam: CamFunction, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cam`` (a batch → probabilities (B, P) and raw maps (B, P, h, w)) of the (3, S, S)
    image's eight rotations and reflections: the mean probabilities (P,) and the mean of the
    maps, each turned back to the image's pose first."""
    batch, poses = _views(image, reflect=True)
    probabilities, maps = cam(batch)
    return probabilities.mean(dim=0), _restored_mean(maps, poses)


def _views(image: torch.Tensor, reflect: bool) -> tuple[torch.Tensor, list[Pose]]:
    """The image's four 90° rotations (the unrotated one first) and, with ``reflect``, those of
    its transpose, as one batch with the pose of each view."""
    poses = [(transposed, k) for transposed in ((False, True) if reflect else (False,))
             for k in range(4)]
    views = [torch.rot90(image.transpose(-1, -2) if t else image, k, dims=(-2, -1))
             for t, k in poses]
    return torch.stack(views), poses


def _restored_mean(maps: torch.Tensor, poses: list[Pose]) -> torch.Tensor:
    """Each view's maps turned back to the image's pose, then averaged."""
    back = []
    for (transposed, k), view in zip(poses, maps, strict=True):
        view = torch.rot90(view, -k, dims=(-2, -1))
        back.append(view.transpose(-1, -2) if transposed else view)
    return torch.stack(back).mean(dim=0)


def _min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each (…, h, w) non-negative map to [0, 1]; a constant map (e.g. all zero) becomes 0."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    spread = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(spread > 0, (maps - low) / spread.clamp(min=1e-12),
                       torch.zeros_like(maps))


def cam_to_shape(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) or (P, h, w) CAMs → bilinear resize to ``shape`` (H, W), float32, each map divided
    by its maximum (an all-zero map stays zero)."""
    array = np.asarray(cam, dtype=np.float32)
    maps = torch.from_numpy(np.ascontiguousarray(array.reshape(-1, *array.shape[-2:])))
    resized = F.interpolate(maps[None], size=tuple(shape), mode="bilinear",
                            align_corners=False)[0].clamp(min=0.0)
    peak = resized.amax(dim=(-2, -1), keepdim=True)
    resized = torch.where(peak > 0, resized / peak.clamp(min=1e-12), torch.zeros_like(resized))
    return resized.numpy().reshape(*array.shape[:-2], *shape).astype(np.float32)


def initial_mask(cam: np.ndarray, quantile: float = 0.1, opening: int = 5) -> np.ndarray:
    """EP-SAM's initial mask of an (H, W) CAM in [0, 1]: the bottom ``quantile`` of the non-zero
    activations is set to 0 and the rest to 1, then a morphological opening with a disk of radius
    ``opening`` pixels (0: none). An all-zero CAM gives an empty mask."""
    cam = np.asarray(cam, dtype=np.float32)
    active = cam[cam > 0]
    if active.size == 0:
        return np.zeros(cam.shape, dtype=bool)
    mask = cam > np.quantile(active, quantile)
    return isotropic_opening(mask, opening) if opening > 0 else mask
