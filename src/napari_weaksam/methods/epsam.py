"""EP-SAM: image-level tags → CAM → initial masks → PEPM point prompts → SAM decoder fine-tuned
round after round on IDS-filtered pseudo-labels (and on every mask people accepted or corrected).

Stages (progress reported, cancellable between items and batches):

1. encode every item once (embedding cache; the decoder trains on cached embeddings);
2. train the CAM source on the tags: the Enhanced-ADL ResNet on the images (default) or the
   WeakMedSAM embedding classifier;
3. per item and class present (:func:`.tag_presence.presence`: the tag when the item is tagged,
   else the classifier's probability ≥ ``gate``): the CAM (rotation-averaged for ADL) and the
   initial mask — CAM above the ``quantile`` of its non-zero values, then a morphological opening;
4. the retraining engine: optional zero-shot, preliminary decoder on the initial masks, then
   ``rounds`` rounds on filtered pseudo-labels, each from the pretrained decoder, each stored as a
   project round with its proposals, decoder checkpoint and metrics.

Ground truth never enters: there is no model selection on masks (the original early-stopped on
ground-truth validation masks), and pseudo-labels are generated without augmentation.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..backbones.sam import Embedding, SamBackbone
from ..cam.rotation_cam import initial_mask
from ..method_settings import EpSamSettings
from ..project import ImageClass, Item, Project
from ..project.rounds import Round
from ..prompts.decode import decode_prompts
from ..prompts.strategy import generation_prompts
from ..retrain import (
    Candidate,
    EngineInputs,
    RetrainingEngine,
    StageResult,
    human_samples,
)
from ..retrain.ids_filter import ids_score
from ..settings_fields import settings_from_params
from ..timing import timed
from .cam_sources import (
    AdlCamSource,
    CamSource,
    EmbeddingCamSource,
    TagData,
    cam_source_from_checkpoint,
)
from .context import RunContext
from .prediction import cached_embeddings, check_trained_on, round_models
from .tag_matrix import read_tags
from .tag_presence import PRESENCE_RULE, presence, tagged_presence
from .weakmedsam import embed_items

METHOD = "epsam"


@dataclass
class EpSamReport:
    stages: list[StageResult]
    items: int
    candidates: list[Candidate]
    classifier_losses: list[float]
    seconds: dict[str, float]

    def summary(self) -> str:
        lines = [f"{self.items} items, {len(self.candidates)} (item, class) pairs to segment; "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())]
        for stage in self.stages:
            timing = ", ".join(f"{k} {v:.1f} s" for k, v in stage.seconds.items())
            lines.append(f"  round {stage.round_id} ({stage.name}): {len(stage.kept)}/"
                         f"{len(stage.masks)} kept by the IDS filter; {timing}")
        return "\n".join(lines)


def run_epsam(context: RunContext, settings: EpSamSettings | None = None) -> EpSamReport:
    """Run EP-SAM on the context's project: one project round per stage, proposals for every
    item."""
    settings = settings or EpSamSettings()
    project, backbone = context.project, context.backbone
    tagged = read_tags(project)
    items, classes = tagged.items, tagged.classes
    train_index, labels = tagged.train_index, tagged.labels
    seconds: dict[str, float] = {}

    with timed(seconds, "embedding"):
        embeddings = embed_items(context, items)
    with timed(seconds, "classifier"):
        source = make_cam_source(settings, backbone)
        losses = source.fit(TagData(project, items, embeddings, train_index, labels), context)
    classifier_checkpoint = _save_classifier(project, source)
    with timed(seconds, "initial masks"):
        candidates = build_candidates(context, items, embeddings, classes, source, settings)

    values = [c.label_value for c in classes]
    human, reviewed = human_samples(project, items, embeddings, values,
                                    settings.engine.human_weight)
    params = settings.to_dict() | {"classifier_checkpoint": classifier_checkpoint,
                                   "backbone": backbone.model_id, "presence": PRESENCE_RULE}
    inputs = EngineInputs(project, backbone, items, values, candidates, METHOD, params,
                          backbone.decoder_state(), human, reviewed)
    engine = RetrainingEngine(inputs, settings.engine, progress=context.progress,
                              cancel=context.cancel)
    stages = engine.run(zero_shot=settings.zero_shot)
    if settings.save_maps:
        _save_maps(project, candidates, classes, stages[-1].round_id)
    return EpSamReport(stages, len(items), candidates, losses, seconds)


def make_cam_source(settings: EpSamSettings, backbone: SamBackbone) -> CamSource:
    if settings.cam_source == "adl":
        return AdlCamSource(settings.classifier, backbone.device)
    return EmbeddingCamSource(settings.embedding_classifier, backbone)


def build_candidates(context: RunContext, items: list[Item], embeddings: list[Embedding],
                     classes: list[ImageClass], source: CamSource,
                     settings: EpSamSettings) -> list[Candidate]:
    """One candidate per (item, class present): its CAM and initial mask."""
    project = context.project
    tags = project.catalog.all_tags()
    candidates = []
    for index, (item, embedding) in enumerate(zip(items, embeddings, strict=True)):
        context.check_cancel()
        cam = source.item_cam(project.item_image(item), embedding)
        tagged = tagged_presence(item, tags, classes)
        for c in np.flatnonzero(presence(tagged, cam.probabilities, settings.gate)).tolist():
            activation = cam.cams[c].astype(np.float32)
            mask = _initial_mask(activation, settings) if cam.masks is None else cam.masks[c]
            candidates.append(Candidate(
                item, c, embedding, activation, mask,
                tagged=tagged is not None, probability=float(cam.probabilities[c]),
            ))
        context.report("initial masks", index + 1, len(items), item.name)
    return candidates


def _initial_mask(activation: np.ndarray, settings: EpSamSettings) -> np.ndarray:
    radius = round(settings.opening_fraction * min(activation.shape))
    return initial_mask(activation, quantile=settings.quantile, opening=radius)


def _save_classifier(project: Project, source: CamSource) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "classifier.pt"
        torch.save(source.checkpoint(), path)
        return project.rounds.add_checkpoint(
            path, description=f"{METHOD} classifier ({source.name})").id


def _save_maps(project: Project, candidates: list[Candidate], classes: list[ImageClass],
               round_id: int) -> None:
    for candidate in candidates:
        project.maps.add(candidate.item.id, "cam", candidate.activation, round_id=round_id,
                         class_id=classes[candidate.class_index].id)


# -- new images --------------------------------------------------------------------------------
class EpSamPredictor:
    """The classifier and decoder of one EP-SAM round, ready to segment items that were never
    tagged (:mod:`.prediction` writes their proposals): the classifier's CAM and presence gate,
    the initial mask, the round's prompt strategy and its decoder, as in the round itself."""

    def __init__(self, project: Project, backbone: SamBackbone, round_: Round) -> None:
        self.settings = settings_from_params(EpSamSettings, round_.params)
        decoder = round_models(project, round_.checkpoint_id, round_)
        check_trained_on(round_, decoder["model_id"], decoder["weights_sha256"], backbone)
        classifier = round_models(project, round_.params.get("classifier_checkpoint"), round_)
        self.source = cam_source_from_checkpoint(classifier, self.settings, backbone)
        self.classes = project.catalog.classes()
        self.backbone, self._decoder = backbone, decoder["state"]

    @contextlib.contextmanager
    def adapted(self) -> Iterator[None]:
        """The backbone with the round's decoder (its own decoder again afterwards)."""
        before = self.backbone.decoder_state()
        try:
            self.backbone.load_decoder_state(self._decoder)
            yield
        finally:
            self.backbone.load_decoder_state(before)

    def segment(self, project: Project, items: list[Item], *, sweep: bool = True,
                ) -> Iterator[tuple[Item, np.ndarray, float]]:
        """``(item, label image, confidence)`` per item, inside :meth:`adapted`."""
        cache = cached_embeddings(project, self.backbone, items, sweep=sweep)
        engine = self.settings.engine
        rng = np.random.default_rng(engine.seed)
        values = [c.label_value for c in self.classes]
        for item in items:
            image = project.item_image(item)
            embedding = cache.embed(image)
            cam = self.source.item_cam(image, embedding)
            label = np.zeros(image.shape[:2], dtype=np.uint8 if max(values) < 256 else np.uint16)
            best = np.full(label.shape, -1.0, dtype=np.float32)
            present = np.flatnonzero(presence(None, cam.probabilities, self.settings.gate))
            confidence = 1.0 - float(np.max(cam.probabilities)) if not len(present) else 1.0
            for c in present.tolist():
                activation = cam.cams[c].astype(np.float32)
                initial = (_initial_mask(activation, self.settings) if cam.masks is None
                           else cam.masks[c])
                prompts = generation_prompts(engine.prompts, activation, initial,
                                             engine.prompt_points, rng)
                mask = decode_prompts(self.backbone, embedding, prompts, engine.min_prompt_iou)
                take = mask & (activation > best)
                label[take], best[take] = values[c], activation[take]
                confidence = min(confidence,
                                 float(cam.probabilities[c]) * ids_score(initial, mask))
            yield item, label, confidence
