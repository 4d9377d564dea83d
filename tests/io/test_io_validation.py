from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_weaksam.io import ImageReadError, validate_array


def test_bool_and_float16_converted():
    assert validate_array(np.ones((3, 3), bool), "m.png").dtype == np.uint8
    assert validate_array(np.ones((3, 3), np.float16), "h.tif").dtype == np.float32


def test_lazy_conversion_stays_lazy():
    lazy = da.ones((4, 8, 8), dtype=bool, chunks=4)
    out = validate_array(lazy, "big.zarr")
    assert isinstance(out, da.Array) and out.dtype == np.uint8


def test_nan_only_checked_on_numpy():
    lazy = da.from_array(np.full((8, 8), np.nan, np.float32), chunks=4)
    assert validate_array(lazy, "lazy.zarr") is lazy
    with pytest.raises(ImageReadError, match="eager.tif: the image contains 64 NaN/Inf"):
        validate_array(np.asarray(lazy), "eager.tif")


@pytest.mark.parametrize("dtype", [np.complex128, object, "U3", "S2"])
def test_bad_dtypes(dtype):
    with pytest.raises(ImageReadError, match="x.tif: pixels of type"):
        validate_array(np.zeros((4, 4), dtype=dtype), "x.tif")


def test_zero_size_dim():
    with pytest.raises(ImageReadError, match="z.tif: the image has an empty dimension"):
        validate_array(np.zeros((0, 4)), "z.tif")


def test_too_many_dims():
    with pytest.raises(ImageReadError, match=r"4D data \(shape \(2, 3, 4, 5\)\)"):
        validate_array(np.zeros((2, 3, 4, 5)), "f.tif")
    with pytest.raises(ImageReadError, match="not an image"):
        validate_array(np.zeros(5), "line.tif")
    assert validate_array(np.zeros((1, 3, 4, 5)), "ok.tif").shape == (1, 3, 4, 5)
