"""SAM-Mix's tag classifier: its CAM is GradCAM, focal-loss training learns, checkpoints."""

from __future__ import annotations

import ast
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_weaksam import method_settings
from napari_weaksam.cam.gradcam import gradcam
from napari_weaksam.cam.tag_classifier import (
    TagClassifier,
    checkpoint,
    focal_loss,
    from_checkpoint,
    tag_inputs,
    train_tag_classifier,
)
from napari_weaksam.method_settings import TagClassifierSettings
from napari_weaksam.option_ranges import OptionError

SIZE = 32


def _squares(count: int, rng: np.random.Generator):
    """Noisy grey-ish images; every other one has a bright square (tag 1)."""
    images = rng.normal(0.3, 0.05, (count, 3, SIZE, SIZE)).astype(np.float32)
    labels = np.zeros((count, 1), dtype=np.float32)
    for i in range(0, count, 2):
        y, x = rng.integers(2, SIZE - 10, 2)
        images[i, :, y:y + 8, x:x + 8] += 0.5
        labels[i] = 1
    return torch.from_numpy(images.clip(0, 1)), labels


# 8 optimiser steps: enough for this task once batch norm is recalibrated (without it the
# running statistics of so short a training give 62 % accuracy on unseen images, with it 100 %)
SETTINGS = TagClassifierSettings(input_size=SIZE, epochs=4, min_steps=0, learning_rate=3e-3,
                                 seed=0)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(2)
    images, labels = _squares(32, np.random.default_rng(0))
    seen: list[tuple[int, int]] = []
    model, losses = train_tag_classifier(images, labels, SETTINGS,
                                         on_epoch=lambda e, n, _l: seen.append((e, n)))
    return model, losses, seen


def _check_cam_is_gradcam(model: TagClassifier, images: torch.Tensor, size: tuple[int, int]):
    probabilities, cams = model.normalised_cam(images, size=size)
    assert cams.shape == (len(images), model.num_classes, *size)
    assert probabilities.shape == (len(images), model.num_classes)
    references = torch.stack([gradcam(model, model.cam_layer, images, target=k, size=size)
                              for k in range(model.num_classes)], dim=1)
    assert torch.allclose(cams, references, atol=1e-5, rtol=0)
    return references


@pytest.mark.parametrize("stride, size", [(8, 32), (16, 32), (32, 64)])
def test_the_cam_is_gradcam_after_min_max(stride, size):
    torch.manual_seed(stride)
    model = TagClassifier(2, input_size=size, output_stride=stride).eval()
    with torch.no_grad():       # opposite heads: wherever one map is negative the other is not
        model.fc.weight[1] = -model.fc.weight[0]
    images = torch.rand(2, 3, size, size)
    images[:, :, :size // 2] *= 0.3    # structure, so the maps vary in space
    references = _check_cam_is_gradcam(model, images, (50, 60))
    assert (references.amax(dim=(1, 2, 3)) > 0.9).all()    # no sample has two empty maps
    raw = model.cam(images)
    assert raw.shape == (2, 2, size // stride, size // stride)
    # the spatial mean of the raw CAM plus the bias is the logit (GAP + linear head)
    with torch.no_grad():
        logits = model(images)
    assert torch.allclose(raw.mean(dim=(2, 3)).detach() + model.fc.bias.detach(), logits,
                          atol=1e-4)


def test_the_local_trunk_cam_is_gradcam_at_a_quarter_of_the_input():
    torch.manual_seed(1)
    model = TagClassifier(2, input_size=SIZE, trunk="local").eval()
    with torch.no_grad():
        model.fc.weight[1] = -model.fc.weight[0]
    images = torch.rand(2, 3, SIZE, SIZE)
    images[:, :, :SIZE // 2] *= 0.3
    _check_cam_is_gradcam(model, images, (40, 36))
    raw = model.cam(images)
    assert raw.shape == (2, 2, SIZE // 4, SIZE // 4)
    # log-sum-exp pooling: the logit lies between the raw CAM's mean and its maximum
    with torch.no_grad():
        logits = model(images) - model.fc.bias
    assert (logits > raw.mean(dim=(2, 3)).detach()).all()
    assert (logits < raw.amax(dim=(2, 3)).detach()).all()
    assert model.config()["trunk"] == "local"


def test_the_local_trunk_learns_and_its_cam_finds_the_square():
    images, labels = _squares(32, np.random.default_rng(0))
    settings = dataclasses.replace(SETTINGS, trunk="local", epochs=6)
    model, losses = train_tag_classifier(images, labels, settings)
    assert losses[-1] < 0.5 * losses[0]
    test, test_labels = _squares(16, np.random.default_rng(1))
    with torch.no_grad():
        predicted = torch.sigmoid(model(test)).numpy() > 0.5
    assert (predicted == (test_labels > 0.5)).mean() >= 0.85
    # the CAM's peak of each positive lies on its bright square, give or take one CAM cell
    _p, cams = model.normalised_cam(test)
    bright = F.max_pool2d((test.mean(dim=1, keepdim=True) > 0.6).float(), 9, 1, 4)[:, 0] > 0
    for i in range(0, len(test), 2):
        peak = int(cams[i, 0].argmax())
        assert bright[i].flatten()[peak], i


@pytest.mark.parametrize("trunk", ["local", "resnet18"])
def test_the_eight_view_cam_turns_with_the_image(trunk):
    torch.manual_seed(2)
    model = TagClassifier(1, input_size=SIZE, trunk=trunk).eval()
    image = torch.rand(1, 3, SIZE, SIZE)
    image[:, :, :12, :20] *= 0.3
    turned = torch.rot90(image, 1, dims=(-2, -1))
    p8, cam8 = model.normalised_cam(image, views=8)
    p8_turned, cam8_turned = model.normalised_cam(turned, views=8)
    assert torch.allclose(torch.rot90(cam8, 1, dims=(-2, -1)), cam8_turned, atol=1e-5)
    assert torch.allclose(p8, p8_turned, atol=1e-6)
    _p1, cam1 = model.normalised_cam(image)
    _p1, cam1_turned = model.normalised_cam(turned)     # one view: not equivariant
    assert not torch.allclose(torch.rot90(cam1, 1, dims=(-2, -1)), cam1_turned, atol=1e-3)
    with pytest.raises(ValueError, match="views"):
        model.normalised_cam(image, views=4)


def test_a_checkpoint_without_a_trunk_is_a_resnet18(trained):
    model, _losses, _seen = trained
    saved = checkpoint(model, SETTINGS)
    del saved["config"]["trunk"]
    del saved["settings"]["trunk"]
    loaded, settings = from_checkpoint(saved)
    assert loaded.trunk_name == "resnet18" and settings.trunk == "resnet18"


def test_the_trained_cam_is_gradcam_too(trained):
    model, _losses, _seen = trained
    images, _labels = _squares(4, np.random.default_rng(3))
    references = _check_cam_is_gradcam(model, images, (SIZE, SIZE))
    assert (references[0::2].amax(dim=(1, 2, 3)) > 0.9).all()  # the positives' maps


def test_the_cam_is_differentiable():
    torch.manual_seed(0)
    model = TagClassifier(1, input_size=SIZE).eval()
    images = torch.rand(2, 3, SIZE, SIZE, requires_grad=True)
    model.cam(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert model.fc.weight.grad is not None


def test_focal_loss_training_reduces_the_loss(trained):
    model, losses, seen = trained
    assert seen == [(e, 4) for e in range(1, 5)]
    assert losses[-1] < 0.5 * losses[0]
    assert not model.training
    images, labels = _squares(16, np.random.default_rng(1))      # unseen images
    with torch.no_grad():
        predicted = torch.sigmoid(model(images)).numpy() > 0.5
    assert (predicted == (labels > 0.5)).mean() >= 0.85


def test_the_focal_loss_uses_the_settings_alpha_and_gamma():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.1]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    plain = TagClassifierSettings(focal_alpha=0.5, focal_gamma=0.0)
    assert torch.allclose(focal_loss(logits, targets, plain), 0.5 * bce.mean())
    focused = TagClassifierSettings(focal_alpha=0.25, focal_gamma=2.0)
    p = torch.sigmoid(logits)
    p_true = p * targets + (1 - p) * (1 - targets)
    weight = 0.25 * targets + 0.75 * (1 - targets)
    expected = (weight * (1 - p_true) ** 2 * bce).mean()
    assert torch.allclose(focal_loss(logits, targets, focused), expected)


def test_a_checkpoint_round_trip_is_bit_exact(trained):
    model, _losses, _seen = trained
    buffer = io.BytesIO()
    torch.save(checkpoint(model, SETTINGS), buffer)
    buffer.seek(0)
    loaded, settings = from_checkpoint(torch.load(buffer, weights_only=True))
    assert settings == SETTINGS
    assert loaded.config() == model.config() and not loaded.training
    original, again = model.state_dict(), loaded.state_dict()
    assert original.keys() == again.keys()
    assert all(torch.equal(original[name], again[name]) for name in original)
    images, _labels = _squares(4, np.random.default_rng(2))
    with torch.no_grad():
        assert torch.equal(model(images), loaded(images))
    assert torch.equal(model.normalised_cam(images)[1], loaded.normalised_cam(images)[1])
    with pytest.raises(ValueError, match="not a tag-classifier"):
        from_checkpoint({"state": original})


def test_inputs_from_grey_and_rgb_images():
    grey = np.arange(50 * 40, dtype=np.uint16).reshape(50, 40)
    rgb = np.zeros((30, 30, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    batch = tag_inputs([grey, rgb], SIZE)
    assert batch.shape == (2, 3, SIZE, SIZE) and batch.dtype == torch.float16
    assert torch.equal(batch[0, 0], batch[0, 1]) and torch.equal(batch[0, 1], batch[0, 2])
    assert batch[1, 0].min() == 1 and batch[1, 1].max() == 0


def test_bad_inputs_are_refused():
    images, labels = _squares(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="label rows"):
        train_tag_classifier(images, labels[:3], SETTINGS)
    with pytest.raises(ValueError, match="input_size"):
        train_tag_classifier(images, labels, dataclasses.replace(SETTINGS, input_size=64))
    with pytest.raises(ValueError, match="output_stride"):
        TagClassifier(1, output_stride=4)
    with pytest.raises(ValueError, match="trunk"):
        TagClassifier(1, trunk="vgg")


def test_settings_ranges_and_no_torch_import():
    for bad in ({"focal_alpha": 1.5}, {"focal_gamma": -1.0}, {"cam_threshold": 1.0},
                {"output_stride": 4}, {"schedule": "linear"}, {"input_size": 8},
                {"trunk": "vgg"}):
        with pytest.raises(OptionError):
            TagClassifierSettings(**bad)
    defaults = TagClassifierSettings()
    assert (defaults.focal_gamma, defaults.cam_threshold) == (2.0, 0.4)
    for field in dataclasses.fields(TagClassifierSettings):
        assert field.metadata["option_range"].help, field.name   # every field has help
    tree = ast.parse(Path(method_settings.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "dataclasses", "typing", "option_ranges"}
