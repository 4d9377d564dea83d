"""PNG and JPEG reading through Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from napari_weaksam.io.image_data import ImageData

# Pillow mode -> mode to convert to before handing the pixels over (None: keep as is).
_CONVERT: dict[str, str | None] = {
    "1": "L",  # bilevel -> 0/255 grey
    "L": None,
    "LA": "L",  # grey + alpha: keep the grey intensities
    "La": "L",
    "I;16": None,
    "I;16B": None,
    "I": None,
    "F": None,
    "RGB": None,
    "RGBA": None,
    "RGBa": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}


def _to_array(img: Image.Image) -> np.ndarray:
    """Pixels of ``img`` as grey (YX), RGB or RGBA (YXC)."""
    mode = img.mode
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in _CONVERT and _CONVERT[mode]:
        img = img.convert(_CONVERT[mode])
    elif mode not in _CONVERT:
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def read_raster(path: Path) -> ImageData:
    """Read a PNG/JPEG (first frame); JPEG EXIF rotation is applied."""
    with Image.open(path) as img:
        img.load()
        fmt = "jpeg" if img.format == "JPEG" else "png"
        if fmt == "jpeg":
            img = ImageOps.exif_transpose(img)
        data = _to_array(img)
    axes = "YXC" if data.ndim == 3 else "YX"
    return ImageData(path=path, data=data, axes=axes, spacing=(1.0, 1.0), format=fmt)
