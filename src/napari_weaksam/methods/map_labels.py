"""Per-class probability maps → one label image and its confidence: how Retrain's mask head and
the segmentation network turn what they predict into a proposal."""

from __future__ import annotations

import numpy as np

from ..backbones.sam import Embedding, SamBackbone
from ..project import ImageClass
from ..prompts.decode import answer_region
from .tag_presence import presence


def class_region(probability: np.ndarray, threshold: float, tagged: bool) -> np.ndarray:
    """Where the map marks the class; on an item tagged with it where no pixel reaches the
    threshold, the pixels at least half the map's maximum (the person says it is there)."""
    region = probability >= threshold
    if tagged and not region.any() and probability.max() > 0:
        region = probability >= 0.5 * probability.max()
    return region


def empty_label(shape: tuple[int, ...], classes: list[ImageClass]) -> np.ndarray:
    """A label image with no class, of the type that holds every class's value."""
    return np.zeros(shape, dtype=np.uint8 if max(c.label_value for c in classes) < 256
                    else np.uint16)


def label_from_maps(probabilities: np.ndarray, maps: np.ndarray, tagged: np.ndarray | None,
                    classes: list[ImageClass], *, gate: float, threshold: float,
                    prompts: str = "none", backbone: SamBackbone | None = None,
                    embedding: Embedding | None = None) -> tuple[np.ndarray, float]:
    """The label image and confidence from presence ``probabilities`` (P,) and ``maps``
    (P, H, W) in the item's frame. Per pixel the class with the highest probability among those
    present (the tag where there is one, else probability ≥ ``gate``) and marked there
    (:func:`class_region`; with ``prompts`` other than "none", SAM's answer to one box per
    component of that region, :func:`~..prompts.decode.answer_region`). Confidence: the lowest
    over its classes of the mean probability inside the mask; with no class, 1 − the highest
    presence (1 when tagged)."""
    values = [c.label_value for c in classes]
    shape = maps.shape[1:]
    label = empty_label(shape, classes)
    best = np.full(shape, -1.0, dtype=np.float32)
    scores = []
    for c in np.flatnonzero(presence(tagged, probabilities, gate)):
        mask = class_region(maps[c], threshold, tagged is not None)
        if prompts != "none" and mask.any():
            mask = answer_region(backbone, embedding, maps[c], mask, prompts)
        take = mask & (maps[c] > best)
        label[take] = values[c]
        best[take] = maps[c][take]
        scores.append(float(maps[c][mask].mean()) if mask.any() else 0.0)
    if scores:
        return label, min(scores)
    return label, 1.0 if tagged is not None else 1.0 - float(probabilities.max())
