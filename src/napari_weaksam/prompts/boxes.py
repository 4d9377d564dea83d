"""Box prompts from a mask: one box per connected component, with a margin, and a training jitter.

Boxes are (N, 4) float32 x0, y0, x1, y1 in the item's own pixels, as
:meth:`~napari_weaksam.backbones.sam.SamBackbone.decode` takes them. They follow
segment-anything's convention for a box around a mask (``utils.amg.batched_mask_to_box``): the
corners are pixel indices and x1, y1 are the *last* column and row of the object (inclusive), not
one past it; the prompt encoder adds 0.5 to reach pixel centres.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Margin on each side: this share of the box's side, and at least MARGIN_PIXELS. LiteMedSAM was
#: trained on boxes around people's masks with each side pushed out by 0–5 px in its 256 px frame
#: (MedSAM: 0–20 px at 1024), so it expects a box a little looser than the object; 5 % is that
#: for a middle-sized object, and the floor keeps a small one from being boxed pixel-tight.
MARGIN_SHARE = 0.05
MARGIN_PIXELS = 2.0
#: Components smaller than this share of the item (and than MIN_AREA_PIXELS) give no box: specks
#: of a thresholded map would each become a prompt for a whole object.
MIN_AREA_SHARE = 0.0005
MIN_AREA_PIXELS = 4
#: 8-connectivity, as segment-anything's own mask post-processing: pixels touching at a corner
#: are one object.
CONNECTIVITY = np.ones((3, 3), dtype=bool)


def mask_boxes(mask: np.ndarray, *, threshold: float = 0.5, margin: float = MARGIN_SHARE,
               min_margin: float = MARGIN_PIXELS, min_area: int | None = None) -> np.ndarray:
    """One box per connected component of ``mask`` (bool, or a map thresholded ``> threshold``),
    in component-label order, with a margin, clipped to the item; small components dropped."""
    binary = _binary(mask, threshold)
    labels, areas = label_components(binary)
    if len(areas) == 0:
        return np.zeros((0, 4), dtype=np.float32)
    smallest = default_min_area(binary.shape) if min_area is None else min_area
    boxes = [_slice_box(found) for found, area in zip(ndimage.find_objects(labels), areas,
                                                      strict=True) if area >= smallest]
    if not boxes:
        return np.zeros((0, 4), dtype=np.float32)
    return widen(np.array(boxes, dtype=np.float32), binary.shape, margin, min_margin)


def label_components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a bool mask (8-connected): the label image (0 = background,
    1..N) and each component's area in pixels (N,)."""
    labels, count = ndimage.label(binary, structure=CONNECTIVITY)
    return labels, np.bincount(labels.ravel(), minlength=count + 1)[1:]


def default_min_area(shape: tuple[int, int]) -> int:
    """The smallest component (pixels) that gets a box in an item of ``shape``."""
    return max(MIN_AREA_PIXELS, int(np.ceil(MIN_AREA_SHARE * shape[0] * shape[1])))


def widen(boxes: np.ndarray, shape: tuple[int, int], share: float,
          minimum: float) -> np.ndarray:
    """Each side pushed out by ``share`` of the box's side (at least ``minimum`` pixels), clipped
    to the item of ``shape`` (H, W)."""
    width, height = box_sides(boxes)
    dx = np.maximum(share * width, minimum)
    dy = np.maximum(share * height, minimum)
    moved = boxes + np.stack([-dx, -dy, dx, dy], axis=1)
    return clip_boxes(moved, shape)


def jitter_boxes(boxes: np.ndarray, shape: tuple[int, int], share: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Each side of each box moved by a uniform random amount of up to ``share`` of the box's
    side, in or out (a random shift and scale), clipped to the item; for training, so a decoder
    that learns from boxes around people's masks does not learn to expect pixel-tight ones."""
    if share <= 0 or len(boxes) == 0:
        return boxes.astype(np.float32)
    width, height = box_sides(boxes)
    sides = np.stack([width, height, width, height], axis=1)
    moved = boxes + rng.uniform(-share, share, size=boxes.shape) * sides
    x0, x1 = np.minimum(moved[:, 0], moved[:, 2]), np.maximum(moved[:, 0], moved[:, 2])
    y0, y1 = np.minimum(moved[:, 1], moved[:, 3]), np.maximum(moved[:, 1], moved[:, 3])
    return clip_boxes(np.stack([x0, y0, x1, y1], axis=1), shape)


def box_sides(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Width and height in pixels of inclusive boxes (a one-pixel box is 1 × 1)."""
    return boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1


def clip_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Corners clipped to the item's pixel indices: x to [0, W − 1], y to [0, H − 1]."""
    height, width = shape
    high = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float32)
    return np.clip(boxes, 0, high).astype(np.float32)


def box_region(mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` inside ``box`` (corners included), the rest False."""
    x0, y0 = (int(np.floor(v)) for v in box[:2])
    x1, y1 = (int(np.ceil(v)) for v in box[2:])
    inside = np.zeros(mask.shape, dtype=bool)
    inside[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
    return inside & mask.astype(bool)


def _slice_box(found: tuple[slice, slice]) -> tuple[float, float, float, float]:
    rows, cols = found
    return cols.start, rows.start, cols.stop - 1, rows.stop - 1


def _binary(mask: np.ndarray, threshold: float) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"a mask for boxes must be 2D, not {array.shape}")
    return array if array.dtype == bool else array > threshold
