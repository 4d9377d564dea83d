"""Decoder fine-tuning on cached embeddings of real patches (real LiteMedSAM weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.io import read_image
from napari_weaksam.metrics import dice
from napari_weaksam.progress import Cancelled
from napari_weaksam.prompts.points import uniform_points
from napari_weaksam.prompts.strategy import target_points
from napari_weaksam.retrain import DecoderTraining, TrainingSample, train_decoder
from napari_weaksam.retrain.decoder_training import low_res_target
from napari_weaksam.sample import sample_dir


@pytest.fixture(scope="module")
def backbone():
    torch.set_num_threads(2)
    return load_backbone("litemedsam")


@pytest.fixture(scope="module")
def samples(backbone):
    """Real H&E patches with a target the pretrained decoder does not give: the image's
    left half (any fixed shape works; the point is that training moves towards it)."""
    paths = sorted((sample_dir() / "images").glob("*.png"))[:4]
    found = []
    for index, path in enumerate(paths):
        image = read_image(path).data
        target = np.zeros(image.shape[:2], dtype=bool)
        target[:, : image.shape[1] // 2] = True
        found.append(TrainingSample(index, backbone.encode_one(image), target))
    return found


def _mean_dice(backbone, samples) -> float:
    rng = np.random.default_rng(5)
    scores = []
    for sample in samples:
        points = uniform_points(sample.mask, 20, rng)
        with torch.inference_mode():
            decoded = backbone.decode(sample.embedding, points=points[None],
                                      point_labels=np.ones((1, len(points)), dtype=np.int64))
        scores.append(dice(decoded.masks()[0, 0], sample.mask))
    return float(np.mean(scores))


@pytest.mark.slow
def test_training_moves_the_decoder_towards_the_targets_and_reset_undoes_it(backbone, samples):
    pretrained = backbone.decoder_state()
    encoder_before = {k: v.clone() for k, v in backbone.image_encoder.state_dict().items()}
    before = _mean_dice(backbone, samples)
    settings = DecoderTraining(epochs=6, batch_size=2, points=20, learning_rate=5e-4)
    losses = train_decoder(backbone, samples, settings)
    after = _mean_dice(backbone, samples)
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert after > before + 0.1, (before, after)
    for key, value in backbone.image_encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), f"encoder weight {key} changed"
    backbone.load_decoder_state(pretrained)
    for key, value in backbone.decoder_state().items():
        assert torch.equal(value, pretrained[key])
    assert _mean_dice(backbone, samples) == pytest.approx(before)


def test_seeded_training_repeats(backbone, samples):
    pretrained = backbone.decoder_state()
    runs = []
    for _ in range(2):
        backbone.load_decoder_state(pretrained)
        runs.append(train_decoder(backbone, samples[:2],
                                  DecoderTraining(epochs=1, batch_size=2, points=10, seed=3)))
    backbone.load_decoder_state(pretrained)
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)


def test_fewer_targets_train_more_epochs_up_to_the_step_floor(backbone, samples):
    pretrained = backbone.decoder_state()
    epochs_seen = []
    losses = train_decoder(backbone, samples[:2],
                           DecoderTraining(epochs=1, min_steps=3, batch_size=2, points=5),
                           on_epoch=lambda _e, n, _loss: epochs_seen.append(n))
    backbone.load_decoder_state(pretrained)
    assert len(losses) == 3 and epochs_seen == [3, 3, 3]   # one batch per epoch, three steps
    more = train_decoder(backbone, samples, DecoderTraining(epochs=1, min_steps=3, batch_size=2,
                                                            points=5))
    backbone.load_decoder_state(pretrained)
    assert len(more) == 2                                    # two batches per epoch


def test_decoder_state_must_fit(backbone):
    state = backbone.decoder_state()
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="do not fit"):
        backbone.load_decoder_state(state)


def test_low_res_target_keeps_the_item_inside_the_model_frame(backbone, samples):
    sample = samples[0]
    mask = np.zeros(sample.embedding.original_shape, dtype=bool)
    mask[-10:, -10:] = True                       # bottom-right corner of the item
    target, (h, w) = low_res_target(backbone, sample.embedding, mask)
    assert target.shape == (256, 256) and target[h:, :].sum() == 0 and target[:, w:].sum() == 0
    ys, xs = np.nonzero(target.cpu().numpy() > 0.5)
    assert ys.min() > h - 15 and xs.min() > w - 15


def test_nothing_to_learn_and_cancel_are_clear(backbone, samples):
    empty = TrainingSample(0, samples[0].embedding, np.zeros_like(samples[0].mask))
    with pytest.raises(ValueError, match="non-empty"):
        train_decoder(backbone, [empty], DecoderTraining(epochs=1))
    import threading

    cancel = threading.Event()
    cancel.set()
    pretrained = backbone.decoder_state()
    with pytest.raises(Cancelled):
        train_decoder(backbone, samples, DecoderTraining(epochs=1), cancel=cancel)
    backbone.load_decoder_state(pretrained)


def test_activation_prompts_follow_the_cam_inside_the_target():
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:24, 8:24] = True
    activation = np.zeros((32, 32), dtype=np.float32)
    activation[8:12, 8:12] = 1.0           # hot corner of the target
    activation[0:4, 0:4] = 1.0             # hot, but outside the target: never a prompt
    rng = np.random.default_rng(0)
    points = target_points(mask, activation, DecoderTraining(points=10, prompts="activation"),
                           rng)
    assert len(points) == 10
    assert all(8 <= x < 12 and 8 <= y < 12 for x, y in points)
    uniform = target_points(mask, activation, DecoderTraining(points=10, prompts="uniform"), rng)
    assert all(mask[int(y), int(x)] for x, y in uniform)
    assert not all(8 <= x < 12 and 8 <= y < 12 for x, y in uniform)
    # a target the CAM does not reach, or a person's mask without a CAM: uniform inside it
    for cam in (np.zeros_like(activation), None):
        fallback = target_points(mask, cam, DecoderTraining(points=10, prompts="activation"), rng)
        assert len(fallback) == 10 and all(mask[int(y), int(x)] for x, y in fallback)


def test_unknown_training_prompts_are_refused():
    with pytest.raises(ValueError, match="prompts"):
        DecoderTraining(prompts="boxes")


def test_training_answers_prompts_of_the_given_strategy(backbone, samples):
    """The half-image targets are boxes' business: LiteMedSAM fits them far better from a box
    around them than from points inside, so the first loss tells which prompts were used."""
    pretrained = backbone.decoder_state()
    first = {}
    for strategy in ("points", "boxes", "boxes+mask"):
        backbone.load_decoder_state(pretrained)
        settings = DecoderTraining(epochs=1, batch_size=2, points=10, learning_rate=1e-12)
        first[strategy] = train_decoder(backbone, samples[:2], settings, strategy=strategy)[0]
    backbone.load_decoder_state(pretrained)
    assert first["boxes"] < first["points"] - 0.2, first
    # without a region (no CAM initial mask), boxes+mask trains on the boxes alone
    assert first["boxes+mask"] == pytest.approx(first["boxes"], rel=1e-6)
    with pytest.raises(ValueError, match="prompt strategy"):
        train_decoder(backbone, samples[:2], DecoderTraining(epochs=1), strategy="scribbles")
