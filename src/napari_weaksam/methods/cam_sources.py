"""Where a method's class activation maps come from: pluggable, trained on image-level tags only.

- :class:`AdlCamSource`: EP-SAM's Enhanced-ADL ResNet on the images (rotation-averaged CAM);
- :class:`EmbeddingCamSource`: WeakMedSAM's classifier (its image branch, or a head on the cached
  SAM embeddings).

Both give, per item, presence probabilities (P,) and CAMs (P, H, W) in [0, 1] at the item's size;
WeakMedSAM's source also gives its own masks (its refined pseudo-labels), which EP-SAM then uses
as initial masks instead of its quantile rule (made for ADL's sparse, non-negative CAMs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..backbones.sam import Embedding, SamBackbone
from ..cam.adl_classifier import AdlClassifier, image_tensor
from ..cam.adl_training import AdlTraining, train_adl_classifier
from ..cam.embedding_classifier import EmbeddingClassifier
from ..cam.image_classifier import ImageCamClassifier
from ..cam.rotation_cam import cam_to_shape, rotation_cam
from ..method_settings import CAM_SOURCES  # noqa: E402 - re-exported
from ..project import Item, Project, ProjectError
from .context import RunContext


@dataclass
class ItemCam:
    probabilities: np.ndarray   # (P,)
    cams: np.ndarray            # (P, H, W) in [0, 1]
    masks: np.ndarray | None = None   # (P, H, W) bool: the source's own masks, if it has them


@dataclass
class TagData:
    """The tagged part of a project, as the classifiers see it."""

    project: Project
    items: list[Item]
    embeddings: list[Embedding]
    train_index: list[int]      # indices into items of tagged items
    labels: np.ndarray          # (len(train_index), P) {0, 1}


class CamSource(Protocol):
    name: str

    def fit(self, data: TagData, context: RunContext) -> list[float]: ...

    def item_cam(self, image: np.ndarray, embedding: Embedding) -> ItemCam: ...

    def checkpoint(self) -> dict: ...


class AdlCamSource:
    """Enhanced-ADL classifier trained from scratch on the tagged images."""

    name = "adl"

    def __init__(self, settings: AdlTraining, device: torch.device) -> None:
        self.settings = settings
        self.device = device
        self.model: AdlClassifier | None = None

    def fit(self, data: TagData, context: RunContext) -> list[float]:
        from .weakmedsam import image_inputs

        images = image_inputs(lambda i: data.project.item_image(data.items[i]), data.train_index,
                              self.settings.input_size, "classifier: images", context.progress,
                              context.cancel)
        self.model = train_adl_classifier(
            images, data.labels, self.settings, device=self.device, cancel=context.cancel,
            on_epoch=lambda e, n, loss: context.report("classifier: training", e, n, loss=loss),
        )
        return self.settings.losses

    def item_cam(self, image: np.ndarray, embedding: Embedding) -> ItemCam:
        tensor = image_tensor(image, self.settings.input_size).to(self.device)
        probabilities, cams = rotation_cam(self._model(), tensor)
        return ItemCam(probabilities, cam_to_shape(cams, image.shape[:2]))

    def checkpoint(self) -> dict:
        model = self._model()
        return {"kind": "enhanced-adl", "config": model.config(), "state": model.state_dict()}

    def _model(self) -> AdlClassifier:
        if self.model is None:
            raise RuntimeError("the ADL classifier is not trained yet")
        return self.model


class EmbeddingCamSource:
    """WeakMedSAM's parent + sub-class classifier (sub-classes from the frozen SAM embeddings)."""

    name = "weakmedsam"

    def __init__(self, settings, backbone: SamBackbone) -> None:
        self.settings = settings          # WeakMedSamSettings
        self.backbone = backbone
        self.models: list[ImageCamClassifier | EmbeddingClassifier] = []

    def fit(self, data: TagData, context: RunContext) -> list[float]:
        from .weakmedsam import train_on_tags

        self.models, losses = train_on_tags(
            lambda i: data.project.item_image(data.items[i]), data.embeddings, data.train_index,
            data.labels, self.settings, self.backbone, context.progress, context.cancel)
        return losses

    def item_cam(self, image: np.ndarray, embedding: Embedding) -> ItemCam:
        from .weakmedsam import label_item

        if not self.models:
            raise RuntimeError("the WeakMedSAM classifier is not trained yet")
        # every class is walked (gate 0): a tag, not the classifier, says which are present;
        # the initial mask is the thresholded walk (EP-SAM asks SAM itself)
        ungated = dataclasses.replace(self.settings, gate=0.0, mask_prompts="none",
                                      component_evidence=0.0)
        values = list(range(1, self.models[0].parent.out_channels + 1))
        result = label_item(self.backbone, self.models, image, embedding, values, ungated)
        return ItemCam(result.probabilities, result.cams,
                       result.refined > self.settings.threshold)

    def checkpoint(self) -> dict:
        from .weakmedsam import classifier_checkpoint

        if not self.models:
            raise RuntimeError("the WeakMedSAM classifier is not trained yet")
        return classifier_checkpoint(self.models)


def cam_source_from_checkpoint(saved: dict, settings, backbone: SamBackbone) -> CamSource:
    """A trained CAM source back from its checkpoint (EP-SAM's settings give its options);
    a ProjectError for a kind that does not store what rebuilds it."""
    kind = saved.get("kind")
    if kind == "enhanced-adl":
        source = AdlCamSource(settings.classifier, backbone.device)
        model = AdlClassifier(**saved["config"])
        model.load_state_dict(saved["state"], strict=True)
        source.model = model.to(backbone.device).eval()
        return source
    from .weakmedsam import WEAKMEDSAM_KINDS, ensemble_from_checkpoint

    if kind in WEAKMEDSAM_KINDS:
        source = EmbeddingCamSource(settings.embedding_classifier, backbone)
        source.models = ensemble_from_checkpoint(saved, backbone.device)
        return source
    raise ProjectError(f"a {kind!r} classifier checkpoint: not one this version can read")


__all__ = ["CAM_SOURCES", "AdlCamSource", "CamSource", "EmbeddingCamSource", "ItemCam",
           "TagData", "cam_source_from_checkpoint"]
