import math

import torch

from napari_weaksam.cam.high_pass import high_pass, with_high_pass


def _random(shape=(2, 3, 32, 32), seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_shapes():
    images = _random((2, 3, 24, 40))
    assert high_pass(images, 4.0).shape == (2, 1, 24, 40)
    combined = with_high_pass(images, 4.0)
    assert combined.shape == (2, 4, 24, 40)
    assert torch.equal(combined[:, :3], images)


def test_constant_image_has_no_high_frequencies():
    images = torch.full((1, 3, 32, 32), 0.7)
    for radius in (1.0, 4.0):
        assert high_pass(images, radius).abs().max() < 1e-6


def test_radius_zero_or_negative_removes_nothing():
    images = _random()
    for radius in (0.0, -2.0):
        expected = images.abs().mean(dim=1, keepdim=True)
        assert torch.allclose(high_pass(images, radius), expected, atol=1e-5)


def test_radius_one_removes_only_the_mean():
    images = _random()
    centred = images - images.mean(dim=(2, 3), keepdim=True)
    expected = centred.abs().mean(dim=1, keepdim=True)
    assert torch.allclose(high_pass(images, 1.0), expected, atol=1e-5)


def test_sharp_edge_kept_smooth_gradient_removed():
    size = 64
    edge = torch.zeros(1, 3, size, size)
    edge[..., size // 2:] = 1.0
    response = high_pass(edge, 4.0)[0, 0]
    at_edge = response[:, size // 2 - 1: size // 2 + 1].mean()
    inside = response[:, size // 4].mean()
    assert at_edge > 0.3
    assert at_edge > 4 * inside

    x = torch.arange(size, dtype=torch.float32)
    smooth = (0.5 + 0.5 * torch.cos(2 * math.pi * x / size)).expand(1, 3, size, size)
    assert high_pass(smooth, 4.0).max() < 0.05 * response.max()
