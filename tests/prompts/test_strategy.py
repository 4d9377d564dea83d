"""Prompt strategies against the real LiteMedSAM: item-frame boxes reach the model frame, each
strategy builds and decodes, several boxes give the union, low predicted IoU drops a box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prompt_scenes import squares_scene

from napari_weaksam.method_settings import PROMPT_STRATEGIES, DecoderTraining
from napari_weaksam.metrics import dice
from napari_weaksam.prompts import (
    PromptSet,
    activation_points,
    answer_region,
    decode_prompts,
    generation_prompts,
    mask_boxes,
    prompt_logits,
    training_prompts,
)
from napari_weaksam.prompts.boxes import box_region, box_sides
from napari_weaksam.prompts.strategy import target_points

#: Two objects in a wide item (240 × 480): model frame scale 256 / 480.
SQUARES = [(140, 320, 60), (40, 60, 50)]


@pytest.fixture(scope="module")
def scene(litemedsam):
    image, objects = squares_scene(240, 480, SQUARES)
    return litemedsam.encode_one(image), objects


def _received_boxes(backbone, run) -> torch.Tensor:
    """The boxes the prompt encoder itself is called with, while ``run()`` decodes."""
    seen = []

    def hook(_module, _args, kwargs):
        seen.append(kwargs["boxes"].detach().cpu().clone())

    handle = backbone.prompt_encoder.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return torch.cat(seen)


@pytest.mark.parametrize("shape, square", [((240, 480), (140, 320, 60)),
                                           ((480, 240), (320, 140, 60))])
def test_a_box_from_a_mask_in_item_pixels_finds_the_object_in_a_non_square_item(
        litemedsam, shape, square):
    image, objects = squares_scene(*shape, [square], seed=1)
    embedding = litemedsam.encode_one(image)
    boxes = mask_boxes(objects)
    with torch.inference_mode():
        found = litemedsam.decode(embedding, boxes=boxes).masks()[0, 0]
        # the same box already scaled into the model frame (given as item pixels: wrong)
        wrong = litemedsam.decode(embedding, boxes=boxes * 256 / max(shape)).masks()[0, 0]
    assert dice(found, objects) > 0.8
    assert dice(wrong, objects) < 0.2
    received = _received_boxes(litemedsam, lambda: litemedsam.decode(embedding, boxes=boxes))
    assert torch.allclose(received, torch.from_numpy(boxes) * 256 / max(shape))


def test_points_are_pepm_as_before(litemedsam, scene):
    embedding, objects = scene
    activation = np.linspace(0, 1, objects.size).reshape(objects.shape)
    prompts = generation_prompts("points", activation, objects, 12, np.random.default_rng(4))
    expected = activation_points(activation, objects, 12, np.random.default_rng(4))
    assert prompts.boxes is None and prompts.dense is None and len(prompts) == 1
    assert np.array_equal(prompts.points, expected[None])
    assert prompts.point_labels.dtype == np.int64 and (prompts.point_labels == 1).all()
    with torch.inference_mode():
        direct = litemedsam.decode(embedding, points=expected[None],
                                   point_labels=np.ones((1, 12), np.int64)).masks()[0, 0]
    assert np.array_equal(decode_prompts(litemedsam, embedding, prompts), direct)


def test_boxes_give_one_box_per_component_and_the_union_of_their_masks(litemedsam, scene):
    embedding, objects = scene
    prompts = generation_prompts("boxes", objects.astype(float), objects, 10,
                                 np.random.default_rng(0))
    assert len(prompts) == 2 and prompts.points is None and prompts.dense is None
    mask = decode_prompts(litemedsam, embedding, prompts)
    assert dice(mask, objects) > 0.8
    for box in prompts.boxes:                          # each object is found
        assert (mask & box_region(objects, box)).sum() > 0.7 * box_region(objects, box).sum()


def test_boxes_and_mask_give_each_box_its_part_of_the_region(litemedsam, scene):
    embedding, objects = scene
    prompts = generation_prompts("boxes+mask", objects.astype(float), objects, 10,
                                 np.random.default_rng(0))
    assert prompts.dense.shape == (2, *objects.shape)
    for box, dense in zip(prompts.boxes, prompts.dense, strict=True):
        assert np.array_equal(dense, box_region(objects, box)) and dense.any()
    assert not (prompts.dense[0] & prompts.dense[1]).any()
    assert prompts.mask_logits(embedding, 256).shape == (2, 1, 256, 256)
    assert dice(decode_prompts(litemedsam, embedding, prompts), objects) > 0.8


@pytest.mark.parametrize("strategy", ["boxes", "boxes+mask"])
def test_sam_answers_a_blurred_region_with_the_objects_inside_it(litemedsam, scene, strategy):
    from scipy import ndimage

    embedding, objects = scene
    blurred = ndimage.binary_dilation(objects, iterations=12)   # a CAM-like, too large region
    answer = answer_region(litemedsam, embedding, blurred.astype(float), blurred, strategy)
    assert dice(answer, objects) > 0.8 > dice(blurred, objects)
    assert answer.sum() < 0.8 * blurred.sum()


def test_a_region_too_small_for_a_box_stays_as_it_is(litemedsam, scene):
    embedding, objects = scene
    speck = np.zeros_like(objects)
    speck[150, 330:332] = True                  # 2 px: below the smallest boxed component
    answer = answer_region(litemedsam, embedding, speck.astype(float), speck, "boxes")
    assert np.array_equal(answer, speck)


@pytest.mark.parametrize("strategy", PROMPT_STRATEGIES)
def test_an_empty_region_gives_no_prompt_and_an_empty_mask(litemedsam, scene, strategy):
    embedding, objects = scene
    empty = np.zeros_like(objects)
    prompts = generation_prompts(strategy, np.ones(objects.shape), empty, 10,
                                 np.random.default_rng(0))
    assert len(prompts) == 0
    mask = decode_prompts(litemedsam, embedding, prompts)
    assert mask.shape == objects.shape and not mask.any()


def test_a_box_below_the_iou_threshold_is_dropped(litemedsam, scene):
    embedding, objects = scene
    boxes = np.concatenate([mask_boxes(objects),
                            np.array([[400, 10, 470, 60]], np.float32)])   # an empty corner
    with torch.inference_mode():
        decoded = litemedsam.decode(embedding, boxes=boxes)
    iou = decoded.iou[:, 0].numpy()
    order = np.argsort(iou)
    bar = float(iou[order[:2]].mean())                 # between the lowest two
    prompts = PromptSet(boxes=boxes)
    kept = decode_prompts(litemedsam, embedding, prompts, min_iou=bar)
    expected = decoded.masks()[order[1:], 0].any(axis=0)
    assert np.array_equal(kept, expected)
    assert np.array_equal(decode_prompts(litemedsam, embedding, prompts),
                          decoded.masks()[:, 0].any(axis=0))
    assert not decode_prompts(litemedsam, embedding, prompts, min_iou=iou.max() + 1e-3).any()


def test_training_prompts_follow_the_strategy():
    target = np.zeros((100, 200), dtype=bool)
    target[10:30, 20:60] = target[50:90, 120:140] = True
    region = np.zeros_like(target)
    region[12:40, 15:70] = True                        # the initial mask, around the first
    settings = DecoderTraining(points=8, box_jitter=0.1)
    points = training_prompts("points", target, settings, np.random.default_rng(2))
    assert np.array_equal(points.points[0],
                          target_points(target, None, settings, np.random.default_rng(2)))
    boxes = training_prompts("boxes", target, settings, np.random.default_rng(2))
    base = mask_boxes(target)
    assert boxes.boxes.shape == (2, 4) and not np.array_equal(boxes.boxes, base)
    width, height = box_sides(base)
    assert (np.abs(boxes.boxes - base) <= 0.1 * np.stack([width, height] * 2, 1) + 1e-4).all()
    assert boxes.dense is None
    with_region = training_prompts("boxes+mask", target, settings, np.random.default_rng(2),
                                   region=region)
    assert np.array_equal(with_region.boxes, boxes.boxes)
    assert np.array_equal(with_region.dense[0], box_region(region, with_region.boxes[0]))
    # a person's mask has no region: boxes alone
    assert training_prompts("boxes+mask", target, settings, np.random.default_rng(2)).dense is None
    speck = np.zeros((100, 200), dtype=bool)
    speck[5, 5] = True                                 # below the minimum area: still a box
    assert len(training_prompts("boxes", speck, settings, np.random.default_rng(0))) == 1


def test_training_logits_are_the_union_over_boxes_with_gradients(litemedsam, scene):
    embedding, objects = scene
    prompts = PromptSet(boxes=mask_boxes(objects))
    union = prompt_logits(litemedsam, embedding, prompts)
    assert union.shape == (256, 256) and union.requires_grad
    each = [prompt_logits(litemedsam, embedding, PromptSet(boxes=box[None]))
            for box in prompts.boxes]
    assert torch.allclose(union, torch.maximum(*each), atol=1e-5)
    union.sum().backward()
    assert litemedsam.mask_decoder.output_upscaling[0].weight.grad is not None
    litemedsam.zero_grad(set_to_none=True)


def test_an_unknown_strategy_is_refused():
    mask = np.ones((8, 8), bool)
    with pytest.raises(ValueError, match="prompt strategy"):
        generation_prompts("scribbles", mask, mask, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="prompt strategy"):
        training_prompts("scribbles", mask, DecoderTraining(), np.random.default_rng(0))
