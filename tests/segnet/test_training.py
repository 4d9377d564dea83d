"""What trains the segmentation network: target weights, augmentation, and that it learns."""

from __future__ import annotations

import numpy as np
import torch

from napari_weaksam.method_settings import SegNetSettings
from napari_weaksam.project import ImageClass, Item
from napari_weaksam.segnet.network import build_network, predicted_maps
from napari_weaksam.segnet.training import (
    DIHEDRAL,
    SegNetData,
    augment,
    batch_loss,
    class_targets,
    target_weights,
)
from napari_weaksam.training_loop import LoopSettings, train_loop

CLASSES = [ImageClass(1, "tumour", 1, "#ff0000"), ImageClass(2, "cyst", 2, "#00ff00")]


def item(item_id: int) -> Item:
    return Item(id=item_id, source_id=1, name=f"item {item_id}", slice_index=None,
                display_index=0, height=8, width=8, channels=1, tagged=True)


def test_target_weights_follow_tags_reviews_and_confidence():
    settings = SegNetSettings(pseudo_weight=0.5)
    proposal = np.zeros((8, 8), np.uint8)
    proposal[2:4, 2:4] = 1                          # the round gave a tumour, no cyst
    tags = {1: {1}, 2: set(), 3: {1, 2}}
    # tagged tumour only: tumour from the round (0.5 × confidence 0.8), cyst tagged absent
    assert np.allclose(target_weights(item(1), tags, CLASSES, proposal, 0.8, settings),
                       [0.4, 1.0])
    # no finding: nothing of either class, whatever the round said
    assert np.allclose(target_weights(item(2), tags, CLASSES, proposal, 0.8, settings),
                       [1.0, 1.0])
    # a cyst tagged present that the round left empty: unknown, not "absent"
    assert np.allclose(target_weights(item(3), tags, CLASSES, proposal, 0.8, settings),
                       [0.4, 0.0])
    # untagged: the round's answer for both classes, at the pseudo-label's weight
    assert np.allclose(target_weights(item(4), tags, CLASSES, proposal, None, settings),
                       [0.5, 0.5])
    # untagged and never proposed for: nothing known
    assert np.allclose(target_weights(item(4), tags, CLASSES, None, None, settings), [0, 0])
    unweighted = SegNetSettings(pseudo_weight=0.5, confidence_weighting=False)
    assert np.allclose(target_weights(item(1), tags, CLASSES, proposal, 0.8, unweighted),
                       [0.5, 1.0])


def test_class_targets_are_pixel_shares_per_class():
    label = np.zeros((8, 8), np.uint8)
    label[:4, :4] = 1
    label[4:, 4:] = 2
    targets = class_targets(label, CLASSES, 4)
    assert targets.shape == (2, 4, 4)
    assert torch.equal(targets[0, :2, :2], torch.ones(2, 2))
    assert targets[0].sum() == 4 and targets[1].sum() == 4 and targets[0, 2:, 2:].sum() == 0


def test_augment_gives_the_eight_distinct_flips_and_turns():
    sample = torch.arange(9.0).reshape(1, 1, 3, 3)
    seen = {tuple(augment(sample, torch.tensor([turn])).flatten().tolist())
            for turn in range(DIHEDRAL)}
    assert len(seen) == DIHEDRAL
    assert torch.equal(augment(sample, torch.tensor([0])), sample)


def test_the_network_learns_a_bright_square_and_ignores_zero_weight_targets():
    rng = np.random.default_rng(0)
    size, n = 32, 24
    inputs = torch.from_numpy(rng.uniform(0, 0.3, (n, 3, size, size))).float()
    targets = torch.zeros((n, 1, size, size))
    for i in range(n):
        y, x = rng.integers(2, size - 12, 2)
        inputs[i, :, y:y + 10, x:x + 10] += 0.6
        targets[i, 0, y:y + 10, x:x + 10] = 1
    weight = torch.ones((n, 1))
    wrong = targets.clone()
    wrong[: n // 2] = 1 - wrong[: n // 2]             # half the targets say the opposite …
    weight[: n // 2] = 0                                # … and count for nothing
    data = SegNetData(inputs.half(), wrong.half(), weight)
    torch.manual_seed(0)
    network = build_network(1, (8, 8, 16, 16, 32, 8))
    teaching = data.teaching()
    assert teaching.tolist() == list(range(n // 2, n))
    generator = torch.Generator().manual_seed(0)
    network.train()
    train_loop(network.parameters(), len(teaching),
               lambda index: batch_loss(network, data, teaching[index],
                                        torch.randint(DIHEDRAL, (len(index),),
                                                      generator=generator)),
               LoopSettings(epochs=60, batch_size=6, learning_rate=1e-2), generator=generator)
    network.eval()
    _presence, maps = predicted_maps(network, inputs[0], (size, size))
    predicted, truth = maps[0] >= 0.5, targets[0, 0].numpy() > 0
    assert 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum()) > 0.8
