"""The segmentation network of a round segmenting items: its own rounds' proposals, and new
images (``weaksam predict``) with no tags and no SAM unless the round asks SAM for the masks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ..backbones.sam import Embedding, SamBackbone
from ..method_settings import SegNetSettings
from ..methods.tag_presence import presence
from ..project import ImageClass, Item, Project, ProjectError
from ..project.rounds import Round
from ..prompts.decode import decode_prompts
from ..prompts.strategy import generation_prompts
from ..retrain.from_reviews import class_region
from ..settings_fields import settings_from_params
from .network import build_network, network_input, predicted_maps


def segment_image(network: torch.nn.Module, image: np.ndarray, size: int,
                  tagged: np.ndarray | None, classes: list[ImageClass],
                  settings: SegNetSettings, backbone: SamBackbone | None = None,
                  embedding: Embedding | None = None) -> tuple[np.ndarray, float]:
    """One item's label image and confidence. Per pixel the class with the highest probability
    among those present (the tag where there is one, else the network's presence probability
    ≥ gate) and marked there (≥ threshold; or, when SAM is asked, SAM's answer to one box per
    component of that region). Confidence: the lowest over its classes of the mean
    probability inside the mask; with no class, 1 − the highest presence (1 when tagged)."""
    probabilities, maps = predicted_maps(network, network_input(image, size), image.shape[:2])
    values = [c.label_value for c in classes]
    label = np.zeros(image.shape[:2], dtype=np.uint8 if max(values) < 256 else np.uint16)
    best = np.full(image.shape[:2], -1.0, dtype=np.float32)
    scores = []
    rng = np.random.default_rng(0)
    for c in np.flatnonzero(presence(tagged, probabilities, settings.gate)):
        mask = class_region(maps[c], settings.threshold, tagged is not None)
        if settings.prompts != "none" and mask.any():
            mask = decode_prompts(backbone, embedding, generation_prompts(
                settings.prompts, maps[c], mask, 0, rng))
        take = mask & (maps[c] > best)
        label[take] = values[c]
        best[take] = maps[c][take]
        scores.append(float(maps[c][mask].mean()) if mask.any() else 0.0)
    if scores:
        return label, min(scores)
    return label, 1.0 if tagged is not None else 1.0 - float(probabilities.max())


def load_network(saved: dict) -> torch.nn.Module:
    """The network a checkpoint holds, in evaluation mode."""
    config = saved["config"]
    network = build_network(config["classes"], tuple(config["features"]))
    network.load_state_dict(saved["state"])
    return network.eval()


class SegNetPredictor:
    """A segmentation-network round's U-Net (and SAM, when the round asked it)."""

    def __init__(self, project: Project, backbone: SamBackbone, round_: Round) -> None:
        from ..methods.prediction import check_trained_on, round_models

        saved = round_models(project, round_.checkpoint_id, round_)
        self.classes = project.catalog.classes()
        if saved["class_ids"] != [c.id for c in self.classes]:
            raise ProjectError(f"round {round_.id} was trained on other classes than the "
                               "project has now; train it again")
        self.settings = settings_from_params(SegNetSettings, round_.params)
        if self.settings.prompts != "none":
            check_trained_on(round_, round_.params["backbone"], round_.params["weights_sha256"],
                             backbone)
        self.network = load_network(saved).to(backbone.device)
        self.size = saved["config"]["size"]
        self.backbone = backbone

    def adapted(self):
        """The network trains no part of SAM: the backbone stays as it is."""
        return contextlib.nullcontext()

    def segment(self, project: Project, items: list[Item], *, sweep: bool = True,
                ) -> Iterator[tuple[Item, np.ndarray, float]]:
        """``(item, label image, confidence)`` per item (as if untagged)."""
        from ..methods.prediction import cached_embeddings

        cache = (cached_embeddings(project, self.backbone, items, sweep=sweep)
                 if self.settings.prompts != "none" else None)
        for item in items:
            image = project.item_image(item)
            label, confidence = segment_image(
                self.network, image, self.size, None, self.classes, self.settings,
                self.backbone, cache.embed(image) if cache is not None else None)
            yield item, label, confidence
