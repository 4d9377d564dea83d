"""Embedding cache: keyed by content and backbone signature; interrupted fills resume."""

from __future__ import annotations

import dataclasses
import threading

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from napari_weaksam.backbones.embedding_cache import EmbeddingCache, content_hash
from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.sample import sample_dir


@pytest.fixture(scope="module")
def backbone():
    torch.set_num_threads(2)
    return load_backbone("litemedsam")


@pytest.fixture(scope="module")
def patches():
    files = sorted((sample_dir() / "images").glob("*.png"))[:4]
    return [iio.imread(f) for f in files]


def test_content_hash_sees_pixels_shape_and_dtype():
    image = np.zeros((8, 8), np.uint8)
    changed = image.copy()
    changed[3, 3] = 1
    assert content_hash(image) != content_hash(changed)
    assert content_hash(image) != content_hash(image.reshape(4, 16))
    assert content_hash(image) != content_hash(image.astype(np.uint16))
    assert content_hash(image) == content_hash(image.copy())


def test_cached_embedding_round_trips_in_fp16(tmp_path, backbone, patches):
    cache = EmbeddingCache(tmp_path, backbone)
    fresh = cache.embed(patches[0])
    again = cache.get(patches[0])
    assert again is not None
    assert again.original_shape == fresh.original_shape == (224, 224)
    assert again.resized_shape == fresh.resized_shape == (256, 256)
    assert again.features.dtype == torch.float16
    assert torch.allclose(again.features.float(), fresh.features, atol=2e-2, rtol=1e-2)


def test_signature_mismatch_recomputes(tmp_path, backbone, patches):
    EmbeddingCache(tmp_path, backbone).embed(patches[0])
    assert EmbeddingCache(tmp_path, backbone).has(patches[0])
    original = backbone.preprocessing
    try:
        backbone.preprocessing = dataclasses.replace(original, version=original.version + 1)
        assert not EmbeddingCache(tmp_path, backbone).has(patches[0])
    finally:
        backbone.preprocessing = original
    backbone.set_precision("bf16")
    try:
        assert not EmbeddingCache(tmp_path, backbone).has(patches[0])
    finally:
        backbone.set_precision("fp32")
    sha = backbone.weights_sha256
    try:
        backbone.weights_sha256 = "0" * 64
        assert not EmbeddingCache(tmp_path, backbone).has(patches[0])
    finally:
        backbone.weights_sha256 = sha


def drain(steps):
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def test_interrupted_fill_resumes_where_it_stopped(tmp_path, backbone, patches):
    cache = EmbeddingCache(tmp_path, backbone)
    cancel = threading.Event()
    loads = []

    def load(i):
        loads.append(i)
        if len(loads) == 3:  # stop after the first batch of two
            cancel.set()
        return patches[i]

    first = drain(cache.fill(load, range(4), batch_size=2, cancel=cancel))
    assert first == 2
    assert [cache.has(p) for p in patches] == [True, True, False, False]
    second = drain(cache.fill(lambda i: patches[i], range(4), batch_size=2))
    assert second == 2
    assert all(cache.has(p) for p in patches)
    assert not (cache.folder / ".tmp").exists() or not any((cache.folder / ".tmp").iterdir())


def test_a_cpu_encodes_one_image_at_a_time_by_default(tmp_path, backbone, patches):
    assert backbone.encode_batch_size == 1
    cache = EmbeddingCache(tmp_path, backbone)
    steps = list(cache.fill(lambda i: patches[i], range(3)))
    assert steps == [(1, 3), (2, 3), (3, 3)]   # each image stored as soon as it is encoded
    alone = backbone.encode(patches[:2])
    batched = backbone.encode(patches[:2], batch_size=2)
    for one, two in zip(alone, batched, strict=True):
        assert torch.allclose(one.features, two.features, atol=1e-4)

