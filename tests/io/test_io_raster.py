from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_weaksam.io import ImageReadError, read_image


def _ramp(shape: tuple[int, ...], dtype: type = np.uint8) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % np.iinfo(dtype).max).astype(dtype).reshape(shape)


def test_png_grey_round_trip(tmp_path):
    data = _ramp((20, 30))
    Image.fromarray(data).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    assert image.axes == "YX"
    assert image.format == "png"
    assert image.spacing == (1.0, 1.0)
    assert not image.is_rgb and not image.is_volume and image.n_slices == 1
    np.testing.assert_array_equal(image.data, data)
    np.testing.assert_array_equal(image.slice(0), data)
    with pytest.raises(IndexError):
        image.slice(1)


@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("RGBA", 4)])
def test_png_colour_round_trip(tmp_path, mode, channels):
    data = _ramp((12, 16, channels))
    Image.fromarray(data, mode=mode).save(tmp_path / "colour.png")
    image = read_image(tmp_path / "colour.png")
    assert image.axes == "YXC"
    assert image.is_rgb
    np.testing.assert_array_equal(image.data, data)


def test_png_16bit_grey_kept(tmp_path):
    data = _ramp((10, 11), np.uint16) * 50
    Image.fromarray(data).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png")
    assert image.data.dtype == np.uint16
    np.testing.assert_array_equal(image.data, data)


def test_png_palette_becomes_rgb(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4] = (255, 0, 0)
    Image.fromarray(rgb).convert("P").save(tmp_path / "pal.png")
    image = read_image(tmp_path / "pal.png")
    assert image.axes == "YXC" and image.data.shape == (8, 8, 3)
    np.testing.assert_array_equal(image.data[0, 0], (255, 0, 0))


def test_png_grey_alpha_keeps_grey(tmp_path):
    Image.fromarray(np.full((5, 5), 77, np.uint8)).convert("LA").save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.axes == "YX"
    assert int(image.data[0, 0]) == 77


def test_jpeg_reads_as_rgb(tmp_path):
    data = np.full((16, 16, 3), 128, np.uint8)
    Image.fromarray(data).save(tmp_path / "photo.jpg", quality=95)
    image = read_image(tmp_path / "photo.jpg")
    assert image.format == "jpeg" and image.axes == "YXC"
    assert np.abs(image.data.astype(int) - 128).max() <= 2


def test_random_bytes_named_png(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 255, 400, np.uint8).tobytes())
    with pytest.raises(ImageReadError, match="noise.png"):
        read_image(path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(path)


def test_real_png(shared_data):
    files = sorted((shared_data / "lgg_mri_dev" / "images").glob("*.png"))
    if not files:
        pytest.skip("no PNG files in lgg_mri_dev")
    image = read_image(files[0])
    assert image.axes in ("YX", "YXC")
    assert image.data.dtype == np.uint8
