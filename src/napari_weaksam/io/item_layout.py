"""The one layout the pipeline works on: every item is (H, W) grey or (H, W, 3) RGB.

A source keeps its file's layout (``YX``, ``YXC``, ``CYX`` or ``ZYX``, see
:class:`~napari_weaksam.io.ImageData`); this module maps an item's plane to the pipeline's:

- one channel (``YX``, or a slice of a ``ZYX`` volume): grey, as stored;
- three channels, last (``YXC``) or first (``CYX``, e.g. an OME-TIFF or OME-Zarr): RGB, in the
  file's channel order;
- four channels last (``YXC``: RGBA, how PNG and TIFF store alpha): RGB, the alpha dropped;
- any other count (two, five or more, or four channels first, which are stains rather than
  alpha) is refused, at import and when an item is read, naming the file and the count: keeping
  some of the channels or mixing them would change what the methods see without anyone
  deciding it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_weaksam.io.errors import ImageReadError
from napari_weaksam.io.image_data import ImageData


def channel_count(image: ImageData) -> int:
    """Channels per pixel (1 for grey images and volumes)."""
    return image.shape[image.axes.index("C")] if "C" in image.axes else 1


def check_item_layout(image: ImageData) -> None:
    """Refuse (:class:`ImageReadError`) an image whose channels the pipeline cannot take."""
    channels = channel_count(image)
    if channels in (1, 3) or (channels == 4 and image.axes == "YXC"):
        return
    where = "first" if image.axes.startswith("C") else "last"
    raise ImageReadError(
        f"{Path(image.path).name}: {channels} channels (shape {image.shape}, channels {where}) "
        "cannot be segmented: the methods take grey, RGB (3 channels) or RGBA (4, channels "
        "last) images. Save the channels to segment as a grey or RGB image (or one file per "
        "channel) and import that."
    )


def item_plane(image: ImageData, display_index: int) -> np.ndarray:
    """One item's pixels in the pipeline's layout, in their stored dtype: (H, W) grey or
    (H, W, 3) RGB (a view where the file's layout differs, so nothing is copied)."""
    check_item_layout(image)
    try:
        plane = image.slice(display_index)
    except MemoryError as error:
        raise ImageReadError(_too_big(image)) from error
    if image.axes == "CYX":
        plane = np.moveaxis(plane, 0, -1)
    return plane[..., :3] if plane.ndim == 3 else plane


def tile_plane(image: ImageData, level: int, x: int, y: int, height: int,
               width: int) -> np.ndarray:
    """A tile's pixels (rows ``y``.., columns ``x``.. of pyramid ``level``) in the pipeline's
    layout; only that region is read from a lazy level."""
    check_item_layout(image)
    source = image.levels[level] if image.levels else image.data
    if level and not image.levels:
        raise ImageReadError(f"{Path(image.path).name}: has no pyramid level {level}")
    rows, cols = slice(y, y + height), slice(x, x + width)
    if image.axes.startswith("C"):
        return np.moveaxis(np.asarray(source[:, rows, cols]), 0, -1)[..., :3]
    plane = np.asarray(source[rows, cols])
    return plane[..., :3] if plane.ndim == 3 else plane


def _too_big(image: ImageData) -> str:
    plane = image.shape[1:] if image.is_volume else image.shape
    gigabytes = int(np.prod(plane)) * image.dtype.itemsize / 1024**3
    return (f"{Path(image.path).name}: one {'slice' if image.is_volume else 'image'} of "
            f"{' × '.join(map(str, plane))} {image.dtype} pixels ({gigabytes:.1f} GB) does not "
            "fit in the available memory. Close other programs, or crop the image or split it "
            "into tiles and import those.")
