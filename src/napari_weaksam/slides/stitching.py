"""Tile labels stitched into one label pyramid per slide (zarr, OME-NGFF multiscales).

Which label a tile gives: the mask a person accepted or corrected, else its latest proposal; a
rejected or never-proposed tile gives none (its pixels stay 0 unless a neighbour covers them).
Where tiles overlap, each pixel takes the class with the largest summed weight, a tile's weight
growing linearly from its border to its centre: a tile knows least about its own edges, so the
tile a pixel is most central in decides, and no seam appears at tile borders.

The pyramid's level 0 is the level the tiles were cut from. It is written one output chunk at a
time (only chunks holding a label are stored), and each coarser level (×2, nearest label) is
made from the finer one chunk by chunk, so memory stays a few tiles whatever the slide's size.
The result lives in ``<project>/slides/source-<id>/labels.zarr``, recomputable at any time; a
new stitch is staged and renamed into place, so a crash leaves the previous one whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from ..io.writers import label_dtype
from ..project import Item, LabelState, Project, ProjectError, Source
from .tiling import Tiling

#: Side of a stored chunk of the label pyramid (pixels).
CHUNK = 512
#: Coarser levels are made until the long side is at most this.
SMALLEST_SIDE = 512
_FOLDER = "slides"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StitchReport:
    """What a stitch used: tiles with a label, by where the label came from."""

    path: Path
    reviewed: int
    proposed: int
    without_label: int
    levels: int


def labels_path(project: Project, source: Source) -> Path:
    """Where a slide's stitched label pyramid is stored in the project."""
    return project.root / _FOLDER / f"source-{source.id}" / "labels.zarr"


def slide_tiling(source: Source) -> Tiling:
    if not source.is_slide or source.tiling is None:
        raise ProjectError(f"{source.path}: not a slide imported as tiles; nothing to stitch")
    return Tiling.from_json(source.tiling)


def tile_label(project: Project, item_id: int) -> tuple[np.ndarray | None, str]:
    """A tile's label and where it came from: ``reviewed``, ``proposed`` or ``none``."""
    state = project.labels.state(item_id)
    if state in (LabelState.ACCEPTED, LabelState.CORRECTED):
        return project.labels.final_mask(item_id), "reviewed"
    if state is LabelState.REJECTED:
        return None, "none"
    proposal = project.labels.latest_proposal(item_id)
    if proposal is None:
        return None, "none"
    return project.labels.proposal_mask(proposal), "proposed"


def center_weight(height: int, width: int) -> np.ndarray:
    """1 at a tile's border rising by 1 per pixel towards its centre (float32)."""
    rows = np.minimum(np.arange(height), np.arange(height)[::-1]) + 1
    cols = np.minimum(np.arange(width), np.arange(width)[::-1]) + 1
    return np.minimum.outer(rows, cols).astype(np.float32)


class _TileLabels:
    """Tile labels read on demand, the most recent few kept (a band of tiles, not the slide)."""

    def __init__(self, project: Project, keep: int) -> None:
        self.project, self.keep = project, keep
        self._cache: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self.origin: dict[int, str] = {}

    def get(self, item_id: int) -> np.ndarray | None:
        if item_id in self._cache:
            self._cache.move_to_end(item_id)
            return self._cache[item_id]
        label, origin = tile_label(self.project, item_id)
        self.origin[item_id] = origin
        self._cache[item_id] = label
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return label


def _tiles_over(by_place: dict[tuple[int, int], Item], tiling: Tiling, r0: int, r1: int,
                c0: int, c1: int) -> Iterator[Item]:
    """Tiles overlapping rows [r0, r1) and columns [c0, c1) of the tiled level."""
    stride = tiling.stride
    rows = range(max(0, (r0 - tiling.tile_size) // stride), r1 // stride + 1)
    cols = range(max(0, (c0 - tiling.tile_size) // stride), c1 // stride + 1)
    for i in rows:
        for j in cols:
            item = by_place.get((i * stride, j * stride))
            if item is not None and item.tile.y < r1 and item.tile.y + item.height > r0 \
                    and item.tile.x < c1 and item.tile.x + item.width > c0:
                yield item


def _by_place(items: list[Item]) -> dict[tuple[int, int], Item]:
    return {(i.tile.y, i.tile.x): i for i in items}


def _vote(tiles: list[Item], labels: _TileLabels, r0: int, r1: int, c0: int, c1: int,
          n_values: int, dtype: np.dtype) -> np.ndarray | None:
    """The chunk [r0, r1) × [c0, c1): each pixel's class of largest summed centre weight."""
    votes = None
    for item in tiles:
        label = labels.get(item.id)
        if label is None:
            continue
        if votes is None:
            votes = np.zeros((n_values, r1 - r0, c1 - c0), np.float32)
        y, x = item.tile.y, item.tile.x
        ty0, ty1 = max(r0, y) - y, min(r1, y + item.height) - y
        tx0, tx1 = max(c0, x) - x, min(c1, x + item.width) - x
        weight = center_weight(item.height, item.width)[ty0:ty1, tx0:tx1]
        part = np.asarray(label)[ty0:ty1, tx0:tx1]
        oy, ox = y + ty0 - r0, x + tx0 - c0
        window = (slice(oy, oy + ty1 - ty0), slice(ox, ox + tx1 - tx0))
        for value in np.unique(part):
            votes[(int(value), *window)] += weight * (part == value)
    if votes is None:
        return None
    return votes.argmax(axis=0).astype(dtype)


def _ome_attrs(source: Source, tiling: Tiling, n_levels: int) -> dict:
    microns = tiling.microns_per_pixel
    unit = "micrometer" if microns else None
    base = microns or 1.0
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [base * 2 ** k, base * 2 ** k]}]} for k in range(n_levels)]
    axes = [{"name": a, "type": "space", **({"unit": unit} if unit else {})} for a in "yx"]
    return {"ome": {"version": "0.5", "multiscales": [
        {"name": f"{Path(source.path).name} labels", "axes": axes, "datasets": datasets}]}}


def level_shapes(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Level 0's shape and each ×2 coarser one until the long side is ≤ SMALLEST_SIDE."""
    shapes = [shape]
    while max(shapes[-1]) > SMALLEST_SIDE:
        rows, cols = shapes[-1]
        shapes.append(((rows + 1) // 2, (cols + 1) // 2))
    return shapes


def stitch_slide(project: Project, source: Source, *,
                 progress: Progress | None = None) -> StitchReport:
    """Stitch the tiles of ``source`` into its label pyramid (see the module docstring)."""
    tiling = slide_tiling(source)
    items = project.catalog.items(source.id)
    classes = project.catalog.classes()
    n_values = max([c.label_value for c in classes], default=0) + 1
    dtype = label_dtype(n_values - 1)
    shapes = level_shapes(tiling.level_shape)
    staging = project.root / _FOLDER / ".tmp" / uuid.uuid4().hex
    staging.parent.mkdir(parents=True, exist_ok=True)
    group = zarr.open_group(str(staging), mode="w", zarr_format=3)
    group.attrs.update({**_ome_attrs(source, tiling, len(shapes)),
                        "weaksam": {"source": source.path, "tiling": tiling.to_json(),
                                    "classes": {c.label_value: c.name for c in classes}}})
    arrays = [group.create_array(str(k), shape=s, dtype=dtype, chunks=(CHUNK, CHUNK),
                                 fill_value=0) for k, s in enumerate(shapes)]
    columns = -(-tiling.level_shape[1] // tiling.stride) + 2
    labels = _TileLabels(project, keep=2 * columns * (-(-tiling.tile_size // CHUNK) + 1))
    _write_level0(arrays[0], items, tiling, labels, n_values, dtype, progress)
    for finer, coarser in zip(arrays, arrays[1:], strict=False):
        _downsample(finer, coarser)
    final = labels_path(project, source)
    _replace(staging, final)
    origins = [labels.origin.get(i.id, "none") for i in items]
    return StitchReport(final, origins.count("reviewed"), origins.count("proposed"),
                        origins.count("none"), len(shapes))


def _write_level0(target: zarr.Array, items: list[Item], tiling: Tiling, labels: _TileLabels,
                  n_values: int, dtype: np.dtype, progress: Progress | None) -> None:
    rows, cols = target.shape
    by_place = _by_place(items)
    chunk_rows = range(0, rows, CHUNK)
    for band, r0 in enumerate(chunk_rows):
        r1 = min(rows, r0 + CHUNK)
        for c0 in range(0, cols, CHUNK):
            c1 = min(cols, c0 + CHUNK)
            tiles = list(_tiles_over(by_place, tiling, r0, r1, c0, c1))
            chunk = _vote(tiles, labels, r0, r1, c0, c1, n_values, dtype) if tiles else None
            if chunk is not None and chunk.any():
                target[r0:r1, c0:c1] = chunk
        if progress:
            progress(band + 1, len(chunk_rows))


def _downsample(finer: zarr.Array, coarser: zarr.Array) -> None:
    """``coarser`` = every second row and column of ``finer``, one chunk at a time."""
    rows, cols = coarser.shape
    for r0 in range(0, rows, CHUNK):
        for c0 in range(0, cols, CHUNK):
            r1, c1 = min(rows, r0 + CHUNK), min(cols, c0 + CHUNK)
            block = np.asarray(finer[2 * r0:2 * r1:2, 2 * c0:2 * c1:2])
            if block.any():
                coarser[r0:r1, c0:c1] = block


def _replace(staging: Path, final: Path) -> None:
    """Put ``staging`` at ``final``; the previous stitch is moved aside first, then removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def open_labels(project: Project, source: Source) -> list[zarr.Array]:
    """The stored label pyramid of a slide (finest first); a clear error when not stitched."""
    path = labels_path(project, source)
    if not path.exists():
        raise ProjectError(f"{Path(source.path).name}: its tiles are not stitched yet; run "
                           "`weaksam stitch` (or Stitch in the Review tab) first")
    group = zarr.open_group(str(path), mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    return [group[d["path"]] for d in datasets]
