import numpy as np
import pytest
import torch

from napari_weaksam.cam.adl_classifier import ARCHITECTURES, AdlClassifier, image_tensor
from napari_weaksam.cam.attention_dropout import AttentionDropout

CHANNELS = {"resnet18": 512, "resnet50": 2048}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {arch: AdlClassifier(3, arch=arch, input_size=64).eval() for arch in ARCHITECTURES}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_shapes_and_feature_stride(models, arch):
    model = models[arch]
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(images)
        features = model.cam_features(images)
        wider = model.cam_features(torch.rand(1, 3, 80, 80))
    probabilities, cams = model.cam(images)
    assert logits.shape == (2, 3)
    assert features.shape == (2, CHANNELS[arch], 4, 4)
    assert wider.shape[-2:] == (5, 5)
    assert cams.shape == (2, 3, 4, 4)
    assert cams.min() >= 0
    assert torch.allclose(probabilities, torch.sigmoid(logits), atol=1e-5)


def test_cam_is_the_fc_weighted_first_layer4_block(models):
    model = models["resnet18"]
    images = torch.rand(1, 3, 64, 64)
    _, cams = model.cam(images)
    with torch.no_grad():
        features = model.cam_features(images)
    expected = torch.relu(torch.einsum("pc,chw->phw", model.fc.weight, features[0]))
    assert torch.allclose(cams[0], expected, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_structure_and_initialisation(models, arch):
    model = models[arch]
    assert model.stem[0].in_channels == 4
    assert sum(isinstance(m, AttentionDropout) for m in model.modules()) == 3
    assert isinstance(model.layer3[1], AttentionDropout)
    assert isinstance(model.layer4[1], AttentionDropout)
    assert isinstance(model.layer4[-1], AttentionDropout)
    assert all(m.drop_rate == 0.75 for m in model.modules() if isinstance(m, AttentionDropout))
    assert torch.all(model.fc.bias == 0)
    assert 0.007 < model.fc.weight.std() < 0.013


def test_config_round_trip():
    torch.manual_seed(1)
    model = AdlClassifier(2, arch="resnet18", high_pass_radius=3.0, input_size=64,
                          adl_drop_rate=0.5).eval()
    config = model.config()
    assert config == {"num_classes": 2, "arch": "resnet18", "high_pass_radius": 3.0,
                      "input_size": 64, "adl_drop_rate": 0.5}
    rebuilt = AdlClassifier(**config)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(rebuilt(images), model(images))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown architecture"):
        AdlClassifier(2, arch="vgg16")
    with pytest.raises(ValueError, match="num_classes"):
        AdlClassifier(0, arch="resnet18")


def test_image_tensor_uint8_rgb_is_divided_by_255():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[..., 0] = 128
    tensor = image_tensor(image, 32)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32
    assert torch.allclose(tensor[0], torch.full((32, 32), 128 / 255))
    assert torch.all(tensor[1:] == 0)


def test_image_tensor_uint16_grey_and_rgba():
    image = np.tile(np.linspace(1000, 3000, 64), (64, 1)).astype(np.uint16)
    tensor = image_tensor(image, 32)
    assert tensor.shape == (3, 32, 32)
    assert tensor.min() == pytest.approx(0.0, abs=0.02)
    assert tensor.max() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(tensor[0], tensor[2])
    assert torch.all(tensor[:, :, 1:] >= tensor[:, :, :-1])  # the ramp survives the resize
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    assert torch.all(image_tensor(rgba, 8) == 0)
    assert torch.all(image_tensor(np.full((10, 10), 5.0), 8) == 0)


def test_image_tensor_rejects_non_finite_and_bad_shapes():
    image = np.ones((8, 8), dtype=np.float32)
    image[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        image_tensor(image, 8)
    with pytest.raises(ValueError):
        image_tensor(np.zeros((8, 8, 5)), 8)
