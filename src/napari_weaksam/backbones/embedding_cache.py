"""Cached image embeddings (zarr, fp16), keyed by what they depend on.

An embedding is stored under ``<root>/<backbone signature>/<content hash>.zarr``. The backbone
signature covers the model, a hash of its weights, the preprocessing version, the precision and the
LoRA adapters' weights when the image encoder has adapters that change it; the content hash
covers the pixels, shape and dtype of the item. A change to any of them gives a different key, so a
stale embedding is never reused: it is recomputed. Writes are atomic (staged, then renamed), so an
interrupted encode leaves only complete entries and resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import numpy as np
import torch
import zarr

from .sam import Embedding, SamBackbone

_TMP = ".tmp"
_HASH_BLOCK_BYTES = 16 * 1024**2


def content_hash(image: np.ndarray) -> str:
    """Hash of an image's pixels (in C order), shape and dtype; a view is hashed a block of rows
    at a time, so it is never copied whole."""
    array = np.asarray(image)
    digest = hashlib.sha256(f"{array.shape}|{array.dtype.str}|".encode())
    if array.flags.c_contiguous or array.ndim == 0:
        digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()[:32]
    rows = max(1, _HASH_BLOCK_BYTES // max(1, array[:1].nbytes))
    for start in range(0, len(array), rows):
        digest.update(np.ascontiguousarray(array[start:start + rows]).data)
    return digest.hexdigest()[:32]


class EmbeddingCache:
    """Embeddings of one backbone under ``root``."""

    def __init__(self, root: Path, backbone: SamBackbone) -> None:
        self.backbone = backbone
        self.root = Path(root)

    @property
    def folder(self) -> Path:
        """Where this backbone's embeddings are, as it is now (its signature follows the
        weights of its LoRA adapters when it has any, so they are read at each use)."""
        return self.root / self.backbone.cache_signature()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.zarr"

    def has(self, image: np.ndarray) -> bool:
        return self._path(content_hash(image)).exists()

    def get(self, image: np.ndarray) -> Embedding | None:
        path = self._path(content_hash(image))
        if not path.exists():
            return None
        stored = zarr.open_array(str(path), mode="r")
        attrs = stored.attrs
        if tuple(attrs["original_shape"]) != tuple(image.shape[:2]):
            return None
        features = torch.from_numpy(np.asarray(stored[...]))  # float16, as stored: half the RAM
        return Embedding(features, tuple(attrs["original_shape"]), tuple(attrs["resized_shape"]))

    def put(self, image: np.ndarray, embedding: Embedding) -> None:
        self._store(content_hash(image), embedding)

    def _store(self, key: str, embedding: Embedding) -> None:
        final = self._path(key)
        if final.exists():
            return
        staging = self.folder / _TMP / uuid.uuid4().hex
        staging.parent.mkdir(parents=True, exist_ok=True)
        features = embedding.features.detach().cpu().numpy().astype(np.float16)
        stored = zarr.create_array(
            store=str(staging), shape=features.shape, dtype=np.float16, chunks=features.shape,
            attributes={"original_shape": list(embedding.original_shape),
                        "resized_shape": list(embedding.resized_shape),
                        "signature": self.backbone.cache_signature()},
        )
        stored[...] = features
        try:
            os.replace(staging, final)
        except OSError:  # another writer got there first: same content, keep theirs
            shutil.rmtree(staging, ignore_errors=True)

    def embed(self, image: np.ndarray) -> Embedding:
        """The cached embedding, computed and stored when missing."""
        found = self.get(image)
        if found is None:
            found = self.backbone.encode_one(image)
            self.put(image, found)
        return found

    def sweep(self) -> None:
        """Remove what interrupted writes left; only while no other process writes here."""
        shutil.rmtree(self.folder / _TMP, ignore_errors=True)

    def fill(self, load: Callable[[int], np.ndarray], indices: Sequence[int], *,
             batch_size: int | None = None, cancel: threading.Event | None = None,
             sweep: bool = True) -> Generator[tuple[int, int], None, int]:
        """Encode the images ``load(i)`` that are not cached yet; yields ``(done, total)``.

        Returns how many were computed. ``batch_size`` None: the backbone's
        (:attr:`.SamBackbone.encode_batch_size`). Stops between batches when ``cancel`` is set;
        what was finished stays cached, so a later call resumes. ``sweep`` first removes
        unfinished writes (leave it off in a worker that shares the cache with others).
        """
        if sweep:
            self.sweep()
        batch_size = batch_size or self.backbone.encode_batch_size
        total, done, computed = len(indices), 0, 0
        pending: list[tuple[str, np.ndarray]] = []  # (content hash, image): each hashed once
        for index in indices:
            if cancel is not None and cancel.is_set():
                return computed
            image = load(index)
            key = content_hash(image)
            if self._path(key).exists():
                done += 1
            else:
                pending.append((key, image))
            if len(pending) == batch_size:
                computed += self._encode(pending)
                done += len(pending)
                pending = []
            yield done, total
        if pending and not (cancel is not None and cancel.is_set()):
            computed += self._encode(pending)
            done += len(pending)
            yield done, total
        return computed

    def _encode(self, pending: list[tuple[str, np.ndarray]]) -> int:
        embeddings = self.backbone.encode([image for _key, image in pending])
        for (key, _image), embedding in zip(pending, embeddings, strict=True):
            self._store(key, embedding)
        return len(pending)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
