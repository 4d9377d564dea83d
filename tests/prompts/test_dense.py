"""Dense mask prompts land where the mask is in the model frame (real LiteMedSAM geometry)."""

from __future__ import annotations

import numpy as np
import pytest
from prompt_scenes import squares_scene

from napari_weaksam.prompts.dense import MASK_LOGIT, dense_prompt, low_res_frame
from napari_weaksam.retrain.decoder_training import low_res_target


@pytest.fixture(scope="module")
def wide(litemedsam):
    """A 240 × 480 item: the model frame holds it in its top 128 of 256 rows."""
    image, objects = squares_scene(240, 480, [(140, 320, 60)])
    return litemedsam.encode_one(image), objects


def test_the_prompt_is_positive_exactly_where_the_training_target_is(litemedsam, wide):
    embedding, objects = wide
    prompt = dense_prompt(objects, embedding, litemedsam.preprocessing.size)
    target, (h, w) = low_res_target(litemedsam, embedding, objects)
    assert prompt.shape == (1, 1, 256, 256) and (h, w) == (128, 256)
    logits = prompt[0, 0].numpy()
    assert np.array_equal(logits > 0, target.cpu().numpy() > 0.5)
    assert logits.max() == MASK_LOGIT and logits.min() == -MASK_LOGIT
    assert (logits[h:] == -MASK_LOGIT).all()        # the padding: zero probability


def test_the_prompt_sits_at_the_object_scaled_by_size_over_the_long_side(litemedsam, wide):
    embedding, objects = wide
    logits = dense_prompt(objects, embedding, 256)[0, 0].numpy()
    ys, xs = np.nonzero(logits > 0)
    scale = 256 / 480                                 # rows 140–199, columns 320–379
    assert abs(ys.min() - 140 * scale) <= 1 and abs(ys.max() + 1 - 200 * scale) <= 1
    assert abs(xs.min() - 320 * scale) <= 1 and abs(xs.max() + 1 - 380 * scale) <= 1
    # not where an unscaled or transposed prompt would put it
    assert not (logits[:, :100] > 0).any()


def test_a_probability_map_maps_linearly_and_a_bool_mask_equals_its_float(litemedsam, wide):
    embedding, objects = wide
    half = dense_prompt(np.full(objects.shape, 0.5), embedding, 256, magnitude=4.0)[0, 0]
    assert half[:128].abs().max() == 0 and (half[128:] == -4.0).all()
    as_float = dense_prompt(objects.astype(np.float32), embedding, 256)
    assert np.array_equal(as_float.numpy(), dense_prompt(objects, embedding, 256).numpy())


def test_a_mask_of_another_size_is_refused(wide):
    embedding, _objects = wide
    with pytest.raises(ValueError, match="does not match"):
        low_res_frame(np.zeros((10, 10), bool), embedding, 256)
