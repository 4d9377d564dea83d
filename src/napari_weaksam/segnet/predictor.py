"""The segmentation network of a round segmenting items: its own rounds' proposals, and new
images (``weaksam predict``) with no tags and no SAM unless the round asks SAM for the masks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from ..backbones.precision import training_autocast
from ..backbones.sam import Embedding, SamBackbone
from ..method_settings import SegNetSettings
from ..methods.map_labels import empty_label, label_from_maps
from ..project import ImageClass, Item, Project, ProjectError
from ..project.rounds import Round
from ..settings_fields import settings_from_params
from .network import build_network, network_input, predicted_maps


def segment_image(network: torch.nn.Module, image: np.ndarray, size: int,
                  tagged: np.ndarray | None, classes: list[ImageClass],
                  settings: SegNetSettings, backbone: SamBackbone | None = None,
                  embedding: Embedding | None = None) -> tuple[np.ndarray, float]:
    """One item's label image and confidence from the network's maps (four flips averaged, in
    the precision the network trained in beside ``backbone``;
    :func:`~..methods.map_labels.label_from_maps`). An item tagged with no class is empty
    (confidence 1) without running the network: the maps could not change that."""
    if tagged is not None and not tagged.any():
        return empty_label(image.shape[:2], classes), 1.0
    autocast = training_autocast(backbone) if backbone is not None else None
    probabilities, maps = predicted_maps(network, network_input(image, size), image.shape[:2],
                                         autocast)
    return label_from_maps(probabilities, maps, tagged, classes, gate=settings.gate,
                           threshold=settings.threshold, prompts=settings.prompts,
                           backbone=backbone, embedding=embedding)


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
