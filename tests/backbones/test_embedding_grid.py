"""Item pixels ↔ embedding cells: where a mask lands on the grid and how a map comes back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_weaksam.backbones.embedding_grid import (
    cells_to_item,
    mask_to_cells,
    valid_cell_mask,
    valid_cells,
)
from napari_weaksam.backbones.sam import Embedding
from napari_weaksam.metrics import dice

MODEL_SIZE = 256   # LiteMedSAM: 256 px → 64 × 64 cells of 4 px


def embedding(shape: tuple[int, int]) -> Embedding:
    scale = MODEL_SIZE / max(shape)
    resized = tuple(int(side * scale + 0.5) for side in shape)
    return Embedding(torch.zeros((8, 64, 64)), shape, resized)


def test_a_tall_item_fills_the_left_cells_and_leaves_the_padding_out():
    tall = embedding((200, 100))          # resized to 256 × 128: 64 × 32 cells
    assert valid_cells(tall, MODEL_SIZE) == (64, 32)
    grid = valid_cell_mask(tall, MODEL_SIZE)
    assert grid[:, :32].all() and not grid[:, 32:].any()


def test_a_mask_covers_the_cells_under_it_by_share():
    tall = embedding((200, 100))
    mask = np.zeros((200, 100), bool)
    mask[:100, :50] = True                # the top-left quarter of the item
    cells = mask_to_cells(mask, tall, MODEL_SIZE)
    assert cells.shape == (64, 64)
    assert torch.allclose(cells[:32, :16], torch.ones(32, 16))
    assert cells[32:].sum() == 0 and cells[:, 16:].sum() == 0
    half = np.zeros((200, 100), bool)
    half[:, :1] = True                    # one item column: 1.28 model px of the first cell's 4
    assert 0.2 < float(mask_to_cells(half, tall, MODEL_SIZE)[10, 0]) < 0.45


def test_a_map_comes_back_onto_the_item_where_it_was():
    wide = embedding((90, 300))
    mask = np.zeros((90, 300), bool)
    mask[20:60, 150:260] = True
    back = cells_to_item(mask_to_cells(mask, wide, MODEL_SIZE)[None], wide, MODEL_SIZE)
    assert back.shape == (1, 90, 300)
    assert dice(back[0] > 0.5, mask) > 0.95


def test_a_mask_of_another_size_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        mask_to_cells(np.zeros((10, 10), bool), embedding((20, 20)), MODEL_SIZE)
