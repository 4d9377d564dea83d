"""Between an item's pixels and its embedding's cells.

The encoder sees the item resized (longest side to the model size) into the top-left of a padded
square; each embedding cell covers ``model size / cells`` model pixels of it. A mask goes to the
cells as the share of each cell it covers (zero in the padding); a map on the cells comes back
to the item as SAM's own masks do: upsampled to the model frame, cropped, resized.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .sam import Embedding


def cell_size(embedding: Embedding, model_size: int) -> int:
    """Model pixels per embedding cell along each side."""
    cells = embedding.features.shape[-1]
    if model_size % cells:
        raise ValueError(f"model size {model_size} is not a multiple of {cells} cells")
    return model_size // cells


def valid_cells(embedding: Embedding, model_size: int) -> tuple[int, int]:
    """(h, w): the top-left cells that hold some of the image."""
    size = cell_size(embedding, model_size)
    return tuple(-(-side // size) for side in embedding.resized_shape)


def valid_cell_mask(embedding: Embedding, model_size: int) -> torch.Tensor:
    """(h, w) bool over the whole grid: True where a cell holds some of the image."""
    grid = torch.zeros(embedding.features.shape[-2:], dtype=torch.bool)
    h, w = valid_cells(embedding, model_size)
    grid[:h, :w] = True
    return grid


def mask_to_cells(mask: np.ndarray, embedding: Embedding, model_size: int) -> torch.Tensor:
    """``mask`` (item frame, bool or [0, 1]) as the share of each cell it covers: (h, w) float32
    over the whole grid, zero in the padding."""
    if mask.shape[:2] != tuple(embedding.original_shape):
        raise ValueError(f"mask {mask.shape[:2]} does not match the item "
                         f"{tuple(embedding.original_shape)}")
    resized = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None],
                            embedding.resized_shape, mode="area")
    frame = torch.zeros((1, 1, model_size, model_size))
    frame[..., : resized.shape[-2], : resized.shape[-1]] = resized
    return F.avg_pool2d(frame, cell_size(embedding, model_size))[0, 0]


def cells_to_item(maps: torch.Tensor, embedding: Embedding, model_size: int) -> np.ndarray:
    """(P, h, w) maps on the whole grid → (P, H, W) float32 in the item's frame (bilinear)."""
    frame = F.interpolate(maps[None].float(), (model_size, model_size), mode="bilinear",
                          align_corners=False)
    h, w = embedding.resized_shape
    item = F.interpolate(frame[..., :h, :w], embedding.original_shape, mode="bilinear",
                         align_corners=False)
    return item[0].numpy()
