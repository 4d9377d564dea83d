import numpy as np
import pytest
import torch

from napari_weaksam.cam.adl_classifier import AdlClassifier
from napari_weaksam.cam.rotation_cam import cam_to_shape, initial_mask, rotation_cam


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AdlClassifier(2, arch="resnet18", input_size=64).eval()


def test_rotation_cam_is_rotation_equivariant(model):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))
    probabilities, cams = rotation_cam(model, image)
    assert probabilities.shape == (2,) and cams.shape == (2, 4, 4)
    assert cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1 and cams.max() > 0
    assert not np.allclose(cams, np.rot90(cams, 1, axes=(-2, -1)), atol=1e-3)  # not symmetric
    _, turned = rotation_cam(model, torch.rot90(image, 1, dims=(-2, -1)))
    assert np.allclose(turned, np.rot90(cams, 1, axes=(-2, -1)), atol=1e-5)


def test_rotation_cam_probabilities_are_the_unrotated_pass(model):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(2))
    probabilities, _ = rotation_cam(model, image)
    with torch.no_grad():
        expected = torch.sigmoid(model(image[None]))[0].numpy()
    assert np.allclose(probabilities, expected, atol=1e-5)


def test_cam_to_shape():
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[0, 0] = 0.5
    full = cam_to_shape(cam, (30, 50))
    assert full.shape == (30, 50) and full.dtype == np.float32
    assert full.max() == pytest.approx(1.0) and full.min() >= 0
    assert np.unravel_index(full.argmax(), full.shape) < (8, 13)
    stacked = cam_to_shape(np.stack([cam, np.zeros_like(cam)]), (30, 50))
    assert stacked.shape == (2, 30, 50)
    assert np.array_equal(stacked[0], full) and np.all(stacked[1] == 0)


def test_initial_mask_of_an_empty_cam_is_empty():
    assert not initial_mask(np.zeros((20, 20), dtype=np.float32)).any()


@pytest.mark.parametrize("quantile", [0.1, 0.5])
def test_initial_mask_keeps_the_top_of_the_non_zero_values(quantile):
    cam = np.linspace(0.0, 1.0, 100 * 100, dtype=np.float32).reshape(100, 100)
    cam[:20] = 0  # 2000 zero pixels: never kept, not counted in the quantile
    mask = initial_mask(cam, quantile=quantile, opening=0)
    assert not mask[:20].any()
    assert mask[20:].mean() == pytest.approx(1 - quantile, abs=0.01)


def test_opening_removes_an_isolated_pixel():
    cam = np.full((60, 60), 0.1, dtype=np.float32)
    cam[10:30, 10:30] = 0.9
    cam[50, 50] = 1.0
    assert initial_mask(cam, opening=0)[50, 50]
    opened = initial_mask(cam, opening=2)
    assert not opened[50, 50]
    assert opened[12:28, 12:28].all()
    assert not opened[cam <= 0.1].any()
