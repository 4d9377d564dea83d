"""The image branch of WeakMedSAM's classifier: pooling, shapes, and that its CAM localises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_weaksam.cam.image_classifier import ImageCamClassifier, lse_pool
from napari_weaksam.cam.training import ClassifierTraining, train_classifier


def test_lse_pool_lies_between_mean_and_max():
    maps = torch.randn(3, 2, 8, 8)
    for sharpness in (0.5, 5.0, 50.0):
        pooled = lse_pool(maps, sharpness)
        assert pooled.shape == (3, 2)
        assert torch.all(pooled >= maps.mean(dim=(2, 3)) - 1e-5)
        assert torch.all(pooled <= maps.amax(dim=(2, 3)) + 1e-5)
    assert torch.allclose(lse_pool(maps, 1e4), maps.amax(dim=(2, 3)), atol=1e-2)


def test_shapes_and_config():
    torch.manual_seed(0)
    model = ImageCamClassifier(classes=2, subclasses=5).eval()
    parent, child = model(torch.rand(4, 3, 96, 96))
    assert parent.shape == (4, 2) and child.shape == (4, 5)
    probabilities, maps = model.cam(torch.rand(1, 3, 96, 96))
    assert maps.shape == (1, 2, 24, 24)          # a quarter of the input
    assert torch.all((probabilities >= 0) & (probabilities <= 1))
    clone = ImageCamClassifier(**model.config())
    clone.load_state_dict(model.state_dict())


def _squares(count: int, size: int, rng: np.random.Generator):
    """Noisy images; the positive half has a bright 10-pixel square somewhere."""
    images = rng.normal(0.3, 0.05, (count, 3, size, size)).astype(np.float32)
    labels = np.zeros((count, 1), dtype=np.float32)
    boxes = []
    for i in range(0, count, 2):
        y, x = rng.integers(4, size - 14, 2)
        images[i, :, y:y + 10, x:x + 10] += 0.5
        labels[i] = 1
        boxes.append((i, y, x))
    return torch.from_numpy(images.clip(0, 1)), labels, boxes


@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_trained_cam_peaks_on_the_object(autocast):
    """In float32, and in bf16 autocast as when SAM's encoder runs in bf16."""
    rng = np.random.default_rng(0)
    images, labels, boxes = _squares(64, 64, rng)
    children = np.concatenate([1 - labels, labels], axis=1)
    torch.manual_seed(0)
    settings = ClassifierTraining(epochs=8, min_steps=0, learning_rate=3e-3, autocast=autocast)
    model = train_classifier(ImageCamClassifier(1, 2), images, labels, children, settings,
                             flip_axes=(-1, -2))
    assert all(np.isfinite(settings.losses)) and settings.losses[-1] < settings.losses[0]
    _probabilities, maps = model.cam(images)
    hits = 0
    for i, y, x in boxes:
        peak = np.unravel_index(int(maps[i, 0].argmax()), maps.shape[-2:])
        hits += y - 4 <= peak[0] * 4 + 2 <= y + 14 and x - 4 <= peak[1] * 4 + 2 <= x + 14
    assert hits >= 0.8 * len(boxes)


def test_dihedral_cam_is_invariant_to_rotating_the_image():
    from napari_weaksam.cam.rotation_cam import dihedral_cam

    torch.manual_seed(0)
    model = ImageCamClassifier(classes=1, subclasses=2).eval()
    image = torch.rand(3, 64, 64)
    probabilities, cam = dihedral_cam(model, image)
    turned_p, turned_cam = dihedral_cam(model, torch.rot90(image, 1, dims=(-2, -1)))
    assert cam.shape == (1, 16, 16)
    assert torch.allclose(probabilities, turned_p, atol=1e-5)
    assert torch.allclose(torch.rot90(cam, 1, dims=(-2, -1)), turned_cam, atol=1e-4)
