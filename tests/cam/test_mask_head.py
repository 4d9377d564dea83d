"""The mask head: per-class cell logits, and presence pooled over the image's cells only."""

from __future__ import annotations

import pytest
import torch

from napari_weaksam.cam.mask_head import MaskHead, head_config, presence_logits


def test_cell_logits_per_class_at_the_embedding_resolution():
    head = MaskHead(classes=3, in_channels=16, hidden=8)
    assert head(torch.randn(2, 16, 12, 12)).shape == (2, 3, 12, 12)
    assert head_config(head) == {"classes": 3, "in_channels": 16, "hidden": 8, "prior": False,
                                 "depth": 1}


def test_a_deeper_head_sees_further_and_rebuilds_from_its_config():
    torch.manual_seed(0)
    shallow, deep = MaskHead(1, 16, 8, depth=1), MaskHead(1, 16, 8, depth=3)
    again = MaskHead(**head_config(deep))
    again.load_state_dict(deep.state_dict())
    embeddings = torch.randn(1, 16, 24, 24)
    moved = embeddings.clone()
    moved[0, :, 12, 12 + 6] += 5.0            # a change 6 cells away from cell (12, 12)
    for head, reaches in ((shallow, False), (deep, True)):
        with torch.no_grad():
            changed = head(moved)[0, 0, 12, 12] != head(embeddings)[0, 0, 12, 12]
        assert bool(changed) is reaches       # 3 × 3 sees 1 cell; + dilation 2 and 4: 7
    assert torch.equal(again(embeddings), deep(embeddings))


def test_a_head_that_reads_a_prior_needs_one_and_it_changes_the_answer():
    torch.manual_seed(0)
    head = MaskHead(classes=2, in_channels=16, hidden=8, prior=True)
    embeddings = torch.randn(1, 16, 12, 12)
    with pytest.raises(ValueError, match="prior"):
        head(embeddings)
    empty, full = torch.zeros(1, 2, 12, 12), torch.ones(1, 2, 12, 12)
    assert not torch.equal(head(embeddings, empty), head(embeddings, full))


def test_presence_pools_the_top_cells_of_the_image_not_of_the_padding():
    logits = torch.full((2, 1, 10, 10), -5.0)
    valid = torch.zeros((2, 10, 10), dtype=torch.bool)
    valid[0] = True
    valid[1, :, :5] = True                # the second item: the right half is padding
    logits[:, 0, :, 5:] = 9.0              # high everywhere in that padding
    logits[0, 0, 0, 0] = 3.0
    pooled = presence_logits(logits, valid, share=0.01)   # k = 1 cell
    assert pooled[0, 0] == 9.0             # real cells of the first item
    assert pooled[1, 0] == -5.0            # the padding never counts
    spread = presence_logits(logits, valid, share=0.5)    # k = 50 > the 50 valid cells? equal
    assert spread[1, 0] == -5.0
