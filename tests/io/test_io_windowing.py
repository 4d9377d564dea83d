from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from napari_weaksam.io import (
    WINDOW_PRESETS,
    ImageData,
    default_contrast_limits,
    percentile_limits,
    window_to_limits,
)
from napari_weaksam.io.windowing import sample_values


def test_presets_and_limits():
    for name in ("brain", "subdural", "stroke", "soft tissue", "lung", "mediastinum", "liver"):
        assert name in WINDOW_PRESETS
    assert WINDOW_PRESETS["brain"] == (40, 80)
    assert window_to_limits(*WINDOW_PRESETS["brain"]) == (0.0, 80.0)
    assert window_to_limits(*WINDOW_PRESETS["lung"]) == (-1350.0, 150.0)
    assert window_to_limits(*WINDOW_PRESETS["bone"]) == (-500.0, 1300.0)
    with pytest.raises(ValueError):
        window_to_limits(40, 0)


def test_percentile_limits_numpy():
    data = np.arange(1001, dtype=np.float32)
    lo, hi = percentile_limits(data.reshape(1, 1001))
    assert lo == pytest.approx(5.0) and hi == pytest.approx(995.0)
    assert percentile_limits(np.arange(1001).reshape(1, 1001), 0, 100) == (0.0, 1000.0)


def test_percentile_constant_and_sparse():
    assert percentile_limits(np.full((5, 5), 7, np.uint8)) == (7.0, 8.0)
    sparse = np.zeros((100, 100), np.uint8)
    sparse[0, 0] = 200
    assert percentile_limits(sparse) == (0.0, 200.0)


def test_percentile_ignores_non_finite():
    data = np.array([[np.nan, 1.0, 2.0, np.inf]])
    lo, hi = percentile_limits(data, 0, 100)
    assert (lo, hi) == (1.0, 2.0)


def test_percentile_on_lazy_array_is_sampled():
    flat = da.arange(6000 * 6000, dtype=np.int64, chunks=6000 * 500) % 1000
    lazy = flat.astype(np.uint16).reshape(6000, 6000)
    sample = sample_values(lazy)
    assert sample.size <= 4_000_000
    lo, hi = percentile_limits(lazy)
    assert 0 <= lo < 20 and 980 < hi <= 999


def test_default_contrast_limits():
    rgb = ImageData(Path("a.png"), np.zeros((4, 4, 3), np.uint8), "YXC", (1.0, 1.0), "png")
    assert default_contrast_limits(rgb) is None
    ct = ImageData(Path("c.nii"), np.zeros((2, 4, 4), np.int16), "ZYX", (1.0,) * 3, "nifti")
    ct.modality = "CT"
    assert default_contrast_limits(ct) == (-160.0, 240.0)
    grey = ImageData(Path("g.tif"), np.arange(16.0).reshape(4, 4), "YX", (1.0, 1.0), "tiff")
    lo, hi = default_contrast_limits(grey)
    assert 0 <= lo < 1 and 14 < hi <= 15
    small = np.arange(16.0).reshape(4, 4) + 100
    pyramid = ImageData(
        Path("p.tif"), np.zeros((8, 8)), "YX", (1.0, 1.0), "tiff", levels=[np.zeros((8, 8)), small]
    )
    assert default_contrast_limits(pyramid)[0] >= 100


def test_percentile_on_zarr_array(tmp_path):
    import zarr

    arr = zarr.create_array(
        store=str(tmp_path / "w.zarr"), shape=(3000, 3000), dtype="uint8", chunks=(500, 500)
    )
    arr[...] = np.tile(np.arange(250, dtype=np.uint8), (3000, 12))
    lo, hi = percentile_limits(arr, 0, 100)
    assert lo == 0.0 and hi >= 240.0
