"""ArrayStore: atomic writes under fresh keys, reading back, sweeping leftovers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_weaksam.project.arrays import ArrayStore
from napari_weaksam.project.errors import ProjectError


@pytest.fixture
def store(tmp_path):
    return ArrayStore(tmp_path / "arrays")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, bool])
def test_write_then_read_round_trip(store, dtype):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 2 if dtype is bool else 200, size=(37, 53)).astype(dtype)
    key = store.write("masks/proposals", data)
    back = store.read(key)
    assert back.dtype == data.dtype
    np.testing.assert_array_equal(back, data)


def test_round_trip_of_a_large_3d_array_over_several_chunks(store):
    data = np.arange(2 * 600 * 700, dtype=np.uint32).reshape(2, 600, 700)
    key = store.write("maps", data)
    np.testing.assert_array_equal(store.read(key), data)


def test_attrs_are_stored_with_the_array(store):
    key = store.write("masks/proposals", np.zeros((4, 4), np.uint8), attrs={"item_id": 7})
    assert dict(store.open(key).attrs) == {"item_id": 7}


def test_keys_are_unique_and_under_the_prefix(store):
    keys = [store.write("masks/proposals", np.zeros((2, 2), np.uint8)) for _ in range(30)]
    assert len(set(keys)) == 30
    assert all(k.startswith("masks/proposals/") for k in keys)
    assert store.keys("masks/proposals") == sorted(keys)
    assert all(store.exists(k) for k in keys)


def test_write_leaves_no_staging_folder_behind(store):
    store.write("masks/proposals", np.ones((3, 3), np.uint8))
    tmp = store.root / ".tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_sweep_removes_tmp_and_unreferenced_keys_only(store):
    kept = store.write("masks/proposals", np.ones((3, 3), np.uint8))
    orphan = store.write("masks/proposals", np.ones((3, 3), np.uint8))
    other = store.write("maps/embeddings", np.ones((3, 3), np.uint8))  # outside swept prefixes
    half_written = store.root / ".tmp" / "deadbeef" / "c" / "0"
    half_written.parent.mkdir(parents=True)
    half_written.write_bytes(b"partial")

    removed = store.sweep(["masks/proposals"], referenced={kept})

    assert removed == [orphan]
    assert not (store.root / ".tmp").exists()
    assert store.exists(kept) and store.exists(other)
    assert not store.exists(orphan)
    np.testing.assert_array_equal(store.read(kept), np.ones((3, 3), np.uint8))


def test_sweep_of_a_missing_prefix_is_a_no_op(store):
    assert store.sweep(["masks/corrections"], referenced=set()) == []


def test_delete_removes_the_array(store):
    key = store.write("masks/corrections", np.ones((3, 3), np.uint8))
    store.delete(key)
    assert not store.exists(key)
    assert store.keys("masks/corrections") == []


@pytest.mark.parametrize("key", ["", "../escape", "masks//x", ".tmp/abc", "masks/./x"])
def test_invalid_keys_are_refused(store, key):
    with pytest.raises(ProjectError, match="invalid array key"):
        store.exists(key)


def test_opening_a_missing_key_names_it(store):
    with pytest.raises(ProjectError, match="masks/proposals/nothere"):
        store.read("masks/proposals/nothere")


def test_read_only_store_refuses_writes(tmp_path):
    with pytest.raises(ProjectError, match="read-only"):
        ArrayStore(tmp_path / "arrays", read_only=True).write("m", np.zeros((2, 2), np.uint8))
    assert not (tmp_path / "arrays").exists()
