"""GradCAM: the formula, that a trained classifier's map finds the object, and no hooks left."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_weaksam.cam.gradcam import cam_prompts, gradcam, min_max, resize_maps
from napari_weaksam.training_loop import LoopSettings, train_loop

SIZE, SIDE = 48, 12


def _block(inputs: int, outputs: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1), nn.ReLU(inplace=True))


class SmallNet(nn.Module):
    """Stride-4 convolutions, then one more block after the GradCAM layer (so its gradient is
    not uniform in space), global average pooling and a linear head. No batch norm, and the
    input is centred on the background level: with batch norm this toy net reached 100 %
    accuracy through other cues (GradCAM peaks off the square), which is not what is tested."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(_block(3, 16, 2), _block(16, 32, 2), _block(32, 32))
        self.after = _block(32, 32)
        self.head = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.after(self.body(x - 0.3)).mean(dim=(2, 3)))


def _squares(count: int, rng: np.random.Generator):
    """Noisy images; every other one has a bright square (class 1) somewhere."""
    images = rng.normal(0.3, 0.05, (count, 3, SIZE, SIZE)).astype(np.float32)
    labels = np.zeros(count, dtype=np.int64)
    truth = np.zeros((count, SIZE, SIZE), dtype=bool)
    for i in range(0, count, 2):
        y, x = rng.integers(2, SIZE - SIDE - 2, 2)
        images[i, :, y:y + SIDE, x:x + SIDE] += 0.5
        labels[i] = 1
        truth[i, y:y + SIDE, x:x + SIDE] = True
    return torch.from_numpy(images.clip(0, 1)), torch.from_numpy(labels), truth


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    images, labels, _truth = _squares(64, rng)
    torch.manual_seed(0)
    model = SmallNet()
    settings = LoopSettings(epochs=8, batch_size=16, learning_rate=3e-3, seed=0)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(images[index]), labels[index])

    model.train()
    losses = train_loop(model.parameters(), len(labels), batch_loss, settings)
    assert losses[-1] < 0.5 * losses[0]
    return model.eval()


def test_the_peak_lies_in_the_square_and_the_mask_overlaps_it(trained):
    images, _labels, truth = _squares(32, np.random.default_rng(1))    # unseen images
    positives = np.flatnonzero(truth.any(axis=(1, 2)))
    maps = gradcam(trained, trained.body, images[positives], target=1)
    assert maps.shape == (len(positives), SIZE, SIZE)
    assert maps.min() >= 0 and maps.max() <= 1
    masks, _boxes = cam_prompts(maps, threshold=0.4)
    hits, ious = 0, []
    for map_, mask, square in zip(maps.numpy(), masks, truth[positives],
                                       strict=True):
        hits += square[np.unravel_index(map_.argmax(), map_.shape)]
        ious.append((mask & square).sum() / (mask | square).sum())
    # measured once (model seed 0, unseen images seed 1): 16 / 16 peaks inside the square,
    # IoU at τ = 0.4 mean 0.634, lowest 0.576 (model seeds 1 and 2: 0.57–0.64, lowest ≥ 0.49)
    assert hits == len(positives)
    assert np.mean(ious) > 0.55 and np.min(ious) > 0.45


def test_one_target_per_sample_and_the_item_size(trained):
    images, _labels, _truth = _squares(4, np.random.default_rng(2))
    both = gradcam(trained, trained.body, images, target=[1, 0, 1, 0], size=(30, 40))
    assert both.shape == (4, 30, 40)
    ones = gradcam(trained, trained.body, images, target=1, size=(30, 40))
    zeros = gradcam(trained, trained.body, images, target=0, size=(30, 40))
    assert torch.equal(both[0], ones[0]) and torch.equal(both[1], zeros[1])
    with pytest.raises(ValueError, match="target"):
        gradcam(trained, trained.body, images, target=[1, 0])


def test_it_is_the_gradcam_formula():
    """Layer = identity on the input, head = GAP then a linear map W: the gradient of logit k is
    W[k] / (h·w) everywhere, so the map is min–max(ReLU(Σ_c W[k, c] x_c))."""
    torch.manual_seed(0)
    layer = nn.Identity()
    linear = nn.Linear(5, 3)
    model = nn.Sequential(layer, nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear).eval()
    x = torch.randn(2, 5, 6, 7)
    maps = gradcam(model, layer, x, target=2)
    expected = min_max(torch.relu(torch.einsum("c,bchw->bhw", linear.weight[2].detach(), x)))
    assert torch.allclose(maps, expected, atol=1e-6)
    assert maps.amax(dim=(1, 2)).tolist() == [1.0, 1.0]


def test_no_hooks_grads_or_mode_changes_are_left_behind(trained):
    images, _labels, _truth = _squares(2, np.random.default_rng(3))
    before = {name: p.grad for name, p in trained.named_parameters()}
    gradcam(trained, trained.body, images, target=1)
    assert not trained.body._forward_hooks
    assert not trained.training
    assert all(p.grad is before[name] for name, p in trained.named_parameters())
    with torch.no_grad():                       # works there too (autograd is turned on inside)
        gradcam(trained, trained.body, images, target=1)
    with pytest.raises(ValueError):            # and an error removes the hook as well
        gradcam(trained, trained.body, images, target=5)
    assert not trained.body._forward_hooks
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        gradcam(trained, trained.body, images)


def test_a_frozen_model_and_an_in_place_activation_after_the_layer():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 1)).eval().requires_grad_(False)
    maps = gradcam(model, conv, torch.rand(3, 3, 8, 8))
    assert maps.shape == (3, 8, 8) and torch.isfinite(maps).all()


def test_min_max_resize_and_prompts():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 4.0]], [[3.0, 3.0], [3.0, 3.0]]])
    scaled = min_max(maps)
    assert scaled[0].tolist() == [[0.0, 0.5], [1.0, 1.0]] and not scaled[1].any()
    big = resize_maps(scaled, (8, 8))
    assert big.shape == (2, 8, 8) and big.min() >= 0 and big.max() <= 1
    masks, boxes = cam_prompts(np.array([[[0, 0, 0, 0], [0, 0.5, 0.9, 0], [0, 0, 0.2, 0]],
                                         np.zeros((3, 4))]), threshold=0.4)
    assert masks[0].sum() == 2 and not masks[1].any()
    assert boxes[0].tolist() == [1, 1, 3, 2]            # x₁, y₁, x₂, y₂ in pixel edges
    assert boxes[1].tolist() == [1.0, 0.75, 3.0, 2.25]  # empty: the central box
