"""Antialiased bilinear resizing of images too big to convert to float at once.

:func:`resize_in_blocks` gives what ``F.interpolate(..., mode="bilinear", antialias=True,
align_corners=False)`` gives on the whole image (to float rounding), but reads the image a strip
of rows at a time in its stored dtype: only one strip is ever in float32, so a 20 000 × 20 000
image needs tens of megabytes on top of its own pixels, not gigabytes. Each strip is resized
across by ``F.interpolate`` itself (the same weights as on the whole image); the rows are then
combined with the same triangle filter, computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

BLOCK_BYTES = 64 * 1024**2  # float32 bytes of one strip of input rows


@dataclass(frozen=True)
class Taps:
    """For each output position: the input range ``[start, stop)`` and its filter weights."""

    start: np.ndarray    # (n_out,) int64, non-decreasing
    stop: np.ndarray     # (n_out,) int64, non-decreasing
    weights: np.ndarray  # (n_out, max taps) float64, zero past each row's taps


def antialias_taps(in_size: int, out_size: int) -> Taps:
    """The triangle-filter taps of torch's antialiased bilinear resize of one axis."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    inverse = 1.0 / scale if scale >= 1.0 else 1.0
    centres = scale * (np.arange(out_size) + 0.5)
    start = np.maximum((centres - support + 0.5).astype(np.int64), 0)
    stop = np.minimum((centres + support + 0.5).astype(np.int64), in_size)
    offsets = np.arange(int((stop - start).max()))
    positions = start[:, None] + offsets[None, :]
    weights = np.clip(1.0 - np.abs((positions - centres[:, None] + 0.5) * inverse), 0.0, None)
    weights[positions >= stop[:, None]] = 0.0
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
    return Taps(start, stop, weights)


def pixel_channels(shape: tuple[int, ...]) -> int:
    """Channels of a (H, W) grey or (H, W, C) image; refuses other layouts."""
    if len(shape) == 2:
        return 1
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return int(shape[-1])
    raise ValueError(f"expected a 2D grey or RGB(A) image, got shape {tuple(shape)}")


def resize_in_blocks(image: Any, shape: tuple[int, int], *,
                     block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """A (H, W) grey or (H, W, C) RGB(A) image (numpy or lazy, any real dtype) → (3, h, w)
    float32, resized with the antialiased bilinear filter; grey is repeated to three channels
    and alpha is dropped, as :func:`~napari_weaksam.backbones.sam.to_rgb_float` does."""
    height, width = (int(s) for s in image.shape[:2])
    channels = min(pixel_channels(tuple(image.shape)), 3)
    rows = antialias_taps(height, shape[0])
    per_strip = max(1, block_bytes // (width * channels * 4))
    out = torch.empty((channels, *shape), dtype=torch.float32)
    first = 0
    while first < shape[0]:
        last = _block_end(rows, first, per_strip)
        top, bottom = int(rows.start[first]), int(rows.stop[last - 1])
        across = _resized_across(_float_strip(image, top, bottom, channels), shape[1])
        out[:, first:last] = torch.matmul(_row_matrix(rows, first, last, top, bottom), across)
        first = last
    return out.expand(3, *shape).contiguous() if channels == 1 else out


def _block_end(rows: Taps, first: int, per_strip: int) -> int:
    """The end of the block of output rows from ``first`` whose input rows fit in a strip."""
    spans = rows.stop[first:] - rows.start[first]  # non-decreasing
    return first + max(1, int(np.searchsorted(spans, per_strip, side="right")))


def _float_strip(image: Any, top: int, bottom: int, channels: int) -> torch.Tensor:
    """Rows ``[top, bottom)`` as (C, rows, W) float32; only this strip is converted."""
    block = np.asarray(image[top:bottom])
    block = block[None] if block.ndim == 2 else np.moveaxis(block[..., :channels], -1, 0)
    strip = torch.from_numpy(np.ascontiguousarray(block)).to(torch.float32).contiguous()
    if block.dtype.kind == "f" and not torch.isfinite(strip).all():
        raise ValueError("the image contains NaN or Inf values")
    return strip


def _resized_across(strip: torch.Tensor, width: int) -> torch.Tensor:
    """Resize the columns only (the rows keep their number: torch leaves that axis alone)."""
    return F.interpolate(strip[None], (strip.shape[1], width), mode="bilinear",
                         align_corners=False, antialias=True)[0]


def _row_matrix(rows: Taps, first: int, last: int, top: int, bottom: int) -> torch.Tensor:
    """(last - first, bottom - top) weights that combine a strip's rows into output rows."""
    matrix = np.zeros((last - first, bottom - top), dtype=np.float64)
    for out_row in range(first, last):
        start, stop = int(rows.start[out_row]), int(rows.stop[out_row])
        matrix[out_row - first, start - top:stop - top] = rows.weights[out_row, :stop - start]
    return torch.from_numpy(matrix.astype(np.float32))
