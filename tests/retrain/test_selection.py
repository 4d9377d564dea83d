"""The selection rules on synthetic masks against the real LiteMedSAM: IDS keeps only what lies
inside the initial mask; agreement keeps what SAM gives back when boxed, so a round can grow a
mask past its initial mask and shrink one that spilled over."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_weaksam.method_settings import RetrainSettings
from napari_weaksam.retrain.ids_filter import select_targets
from napari_weaksam.retrain.selection import agreement_score, selection_score

BAR = RetrainSettings().agreement_threshold


@pytest.fixture(scope="module")
def scene(litemedsam):
    """A textured bright square (rows 140–199, columns 320–379) on a dark, noisy 240 × 480 item."""
    rng = np.random.default_rng(0)
    image = (20 + 10 * rng.random((240, 480))).astype(np.float32)
    square = np.zeros(image.shape, dtype=bool)
    square[140:200, 320:380] = True
    image[square] = 150 + 60 * rng.random(int(square.sum()))
    return litemedsam, litemedsam.encode_one(image), square


def test_a_mask_on_the_objects_edges_comes_back_when_boxed(scene):
    backbone, embedding, square = scene
    assert agreement_score(backbone, embedding, square) >= BAR     # measured: 0.96


def test_a_blob_over_the_object_and_a_fragment_of_it_do_not(scene):
    backbone, embedding, square = scene
    blob = ndimage.binary_dilation(square, iterations=12)
    fragment = square.copy()
    fragment[:, 350:] = False
    assert agreement_score(backbone, embedding, blob) < BAR        # measured: 0.67
    assert agreement_score(backbone, embedding, fragment) < BAR    # measured: 0.60


def test_an_empty_mask_or_a_speck_scores_nothing(scene):
    backbone, embedding, square = scene
    speck = np.zeros_like(square)
    speck[150, 330:332] = True
    assert agreement_score(backbone, embedding, np.zeros_like(square)) == 0.0
    assert agreement_score(backbone, embedding, speck) == 0.0


def test_agreement_lets_a_round_grow_and_shrink_a_mask_where_ids_only_shrinks(scene):
    backbone, embedding, square = scene
    small_initial = square.copy()
    small_initial[170:, :] = False                       # the CAM found half the object
    large_initial = ndimage.binary_dilation(square, iterations=12)   # the CAM spilled over
    blob = ndimage.binary_dilation(square, iterations=6)            # SAM's answer spilled too
    cases = [(small_initial, square), (large_initial, square), (large_initial, blob)]

    def kept(rule: str, bar: float) -> list[int]:
        scores = [selection_score(rule, backbone, embedding, initial, mask)
                  for initial, mask in cases]
        return select_targets([mask for _, mask in cases], scores, bar)[0]

    # IDS: the grown mask fails (half of it lies outside), the blob passes (it lies inside)
    assert kept("ids", RetrainSettings().ids_threshold) == [1, 2]
    # agreement: the square passes grown or shrunk, the blob fails
    assert kept("agreement", BAR) == [0, 1]


def test_an_unknown_rule_is_refused(scene):
    backbone, embedding, square = scene
    with pytest.raises(ValueError, match="selection 'inside'"):
        selection_score("inside", backbone, embedding, square, square)
    with pytest.raises(ValueError, match="selection"):
        RetrainSettings(selection="inside")
