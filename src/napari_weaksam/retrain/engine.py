"""The retraining engine: fine-tune the decoder on filtered pseudo-labels plus every mask a person
accepted or corrected, regenerate, refilter, round after round.

EP-SAM's Algorithm 1 is one use of it (initial CAM masks → preliminary decoder → N rounds); the
review loop calls it after people accepted or corrected masks. Each stage:

1. reset the prompt encoder and decoder to the pretrained weights (never a random start, never
   the previous round's weights);
2. train on the current targets: pseudo-labels that passed the selection (step 4), and
   people's masks, which are never filtered and weigh ``human_weight``. A round trains at least
   as many optimiser steps as the preliminary stage did: fewer masks passing the filter must not
   mean a decoder left closer to the pretrained one (which under-segments). By default
   (``round_targets="carried"``) a round trains on every item's latest kept mask (its initial
   mask until a stage kept one), as many targets as the preliminary stage; ``"selected"``
   trains on the previous stage's kept masks alone, as the original;
3. generate a mask for every (item, class) with prompts of the settings' strategy made from its
   initial mask (default: PEPM points drawn from its CAM inside it; or a box per component, with
   or without the mask as SAM's mask prompt; the decoder trains on the same kind), store one
   label image per item as proposals of a new project round, with the decoder checkpoint and the
   round's metrics;
4. select the new masks that form the next round's targets: by default those that stay inside
   their initial masks (IDS); with ``selection="agreement"`` those SAM gives back when asked
   again with their boxes (:mod:`.selection`), so a round can also grow a mask.

No ground truth is used anywhere, for training or for choosing a model.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbones.sam import Embedding, SamBackbone
from ..method_settings import RetrainSettings
from ..progress import Progress, ProgressCallback, check_cancel
from ..project import Item, LabelState, Project, ProjectError
from ..prompts.decode import decode_prompts
from ..prompts.strategy import generation_prompts
from .decoder_training import DecoderTraining, TrainingSample, train_decoder, training_length
from .ids_filter import select_targets
from .selection import selection_score


@dataclass
class Candidate:
    """One class to segment in one item: its CAM, the initial mask and whether a tag says so."""

    item: Item
    class_index: int
    embedding: Embedding
    activation: np.ndarray   # (H, W) CAM in [0, 1]
    initial: np.ndarray      # (H, W) bool initial mask
    tagged: bool             # the person tagged the class present (training uses these only)
    probability: float


@dataclass
class StageResult:
    name: str
    round_id: int
    masks: list[np.ndarray]          # per candidate, bool (H, W)
    scores: list[float]              # per candidate, the selection rule's score
    kept: list[int]                  # candidate indices that passed the filter
    losses: list[float]
    seconds: dict[str, float]
    steps: int = 0                   # optimiser steps of the decoder training (0: none)


@dataclass
class EngineInputs:
    """What every stage needs; built once per run."""

    project: Project
    backbone: SamBackbone
    items: list[Item]
    class_values: list[int]
    candidates: list[Candidate]
    method: str
    params: dict[str, Any]
    pretrained: dict[str, torch.Tensor]
    human: list[TrainingSample] = field(default_factory=list)
    excluded: set[int] = field(default_factory=set)   # items people rejected or labelled


class RetrainingEngine:
    """Runs stages on one set of candidates; see the module docstring."""

    def __init__(self, inputs: EngineInputs, settings: RetrainSettings, *,
                 progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.inputs = inputs
        self.settings = settings
        self.progress = progress or (lambda _p: None)
        self.cancel = cancel
        self.rng = np.random.default_rng(settings.seed)
        self.preliminary_steps = 0   # optimiser steps of the preliminary stage: the rounds' floor
        # per candidate, the mask a round trains on with round_targets="carried", and its kind
        self.targets: list[tuple[np.ndarray, str]] = []

    # -- stages ---------------------------------------------------------------------------------
    def zero_shot(self) -> StageResult:
        """The pretrained decoder answering the generation prompts (the baseline)."""
        self.reset_decoder()
        return self._finish_stage("zero-shot", [], {})

    def preliminary(self) -> StageResult:
        """Decoder trained on the initial CAM masks (plus people's masks)."""
        self.targets = [(c.initial, "initial") for c in self.inputs.candidates]
        targets = [self._sample(i, c.initial, "initial")
                   for i, c in enumerate(self.inputs.candidates) if self._trainable(c, c.initial)]
        result = self._train_stage("preliminary", targets)
        self.preliminary_steps = result.steps
        return result

    def next_round(self, previous: StageResult, number: int) -> StageResult:
        """Decoder reset, trained on the previous stage's kept pseudo-labels (plus people's);
        with ``round_targets="carried"``, on every candidate's latest kept mask (its initial
        mask until a stage kept one)."""
        candidates = self.inputs.candidates
        if self.settings.round_targets == "carried":
            for i in previous.kept:
                self.targets[i] = (previous.masks[i], "pseudo-label")
            chosen = [(i, *self.targets[i]) for i in range(len(candidates))]
        else:
            chosen = [(i, previous.masks[i], "pseudo-label") for i in previous.kept]
        targets = [self._sample(i, mask, kind) for i, mask, kind in chosen
                   if self._trainable(candidates[i], mask)]
        return self._train_stage(f"round {number}", targets, min_steps=self.preliminary_steps)

    def run(self, *, zero_shot: bool = False) -> list[StageResult]:
        """Optional zero-shot, preliminary, then ``rounds`` rounds."""
        stages = [self.zero_shot()] if zero_shot else []
        stages.append(self.preliminary())
        for number in range(1, self.settings.rounds + 1):
            stages.append(self.next_round(stages[-1], number))
        return stages

    # -- pieces ---------------------------------------------------------------------------------
    def reset_decoder(self) -> None:
        self.inputs.backbone.load_decoder_state(self.inputs.pretrained)

    def generate(self, stage: str) -> tuple[list[np.ndarray], list[float]]:
        """A SAM mask and its selection score for every candidate (no augmentation, no
        gradients)."""
        masks, scores = [], []
        total = len(self.inputs.candidates)
        for index, candidate in enumerate(self.inputs.candidates):
            check_cancel(self.cancel)
            mask = self._predict(candidate)
            masks.append(mask)
            scores.append(selection_score(self.settings.selection, self.inputs.backbone,
                                          candidate.embedding, candidate.initial, mask))
            self.progress(Progress(f"{stage}: pseudo-labels", index + 1, total))
        return masks, scores

    def _predict(self, candidate: Candidate) -> np.ndarray:
        settings = self.settings
        prompts = generation_prompts(settings.prompts, candidate.activation, candidate.initial,
                                     settings.prompt_points, self.rng)
        return decode_prompts(self.inputs.backbone, candidate.embedding, prompts,
                              settings.min_prompt_iou)

    def _train_stage(self, name: str, targets: list[TrainingSample],
                     min_steps: int = 0) -> StageResult:
        self.reset_decoder()
        samples = targets + self.inputs.human
        if not samples:
            raise ProjectError(
                f"{name}: nothing to train the decoder on — no tagged item got a usable mask "
                "(initial CAM masks or filtered pseudo-labels) and no mask was accepted or "
                "corrected. Train the classifier for more epochs, lower the selection threshold, "
                "or correct a few masks by hand.")
        start = time.perf_counter()
        decoder = self.settings.decoder
        settings = DecoderTraining(**{**asdict(decoder), "losses": [],
                                      "min_steps": max(decoder.min_steps, min_steps)})
        train_decoder(
            self.inputs.backbone, samples, settings, strategy=self.settings.prompts,
            cancel=self.cancel,
            on_epoch=lambda e, n, loss: self.progress(
                Progress(f"{name}: training", e, n, f"{len(samples)} masks", loss=loss)),
        )
        seconds = {"training": time.perf_counter() - start}
        epochs, batches = training_length(len(samples), settings)
        steps = epochs * batches
        counts = {"pseudo-label targets": len(targets), "people's masks": len(self.inputs.human),
                  "steps": steps}
        result = self._finish_stage(name, settings.losses, seconds, counts)
        result.steps = steps
        return result

    def _finish_stage(self, name: str, losses: list[float], seconds: dict[str, float],
                      counts: dict[str, int] | None = None) -> StageResult:
        inputs = self.inputs
        round_id = inputs.project.rounds.start_round(inputs.method,
                                                     inputs.params | {"stage": name})
        try:
            checkpoint = self._save_decoder(round_id, name)
            start = time.perf_counter()
            masks, scores = self.generate(name)
            seconds["pseudo-labels"] = time.perf_counter() - start
            rule, threshold = self._selection()
            kept, bar = select_targets(masks, scores, threshold, self.settings.min_kept)
            if bar < threshold:
                shown = "IDS" if rule == "ids" else rule
                self.progress(Progress(f"{name}: {shown} filter", len(kept), len(masks),
                                       f"too few passed {threshold}; kept the {len(kept)} best "
                                       f"({shown} ≥ {bar:.2f})"))
            self._store_proposals(masks, scores, round_id, checkpoint, name)
        except BaseException as error:
            inputs.project.rounds.abandon_round(round_id, error)
            raise
        metrics = {"stage": name, "losses": losses, "seconds": seconds, "kept": len(kept),
                   "selection": rule, f"{rule}_bar": bar, "candidates": len(masks),
                   f"mean_{rule}": _mean(scores), **(counts or {})}
        inputs.project.rounds.finish_round(round_id, "done", metrics=metrics,
                                           checkpoint_id=checkpoint)
        return StageResult(name, round_id, masks, scores, kept, losses, seconds)

    def _selection(self) -> tuple[str, float]:
        """The selection rule and its bar."""
        rule = self.settings.selection
        return rule, (self.settings.agreement_threshold if rule == "agreement"
                      else self.settings.ids_threshold)

    def _store_proposals(self, masks: list[np.ndarray], scores: list[float], round_id: int,
                         checkpoint: int, stage: str) -> None:
        inputs = self.inputs
        by_item: dict[int, list[int]] = {}
        for index, candidate in enumerate(inputs.candidates):
            by_item.setdefault(candidate.item.id, []).append(index)
        params = inputs.params | {"stage": stage}
        for item in inputs.items:
            check_cancel(self.cancel)
            indices = by_item.get(item.id, [])
            label, confidence = self._label_image(item, indices, masks, scores)
            inputs.project.labels.add_proposal(item.id, label, method=inputs.method,
                                               round_id=round_id, checkpoint_id=checkpoint,
                                               params=params, confidence=confidence)

    def _label_image(self, item: Item, indices: list[int], masks: list[np.ndarray],
                     scores: list[float]) -> tuple[np.ndarray, float]:
        """One label per pixel (the class with the highest CAM among those masked there), and
        the lowest confidence over the item's classes: probability × selection score."""
        values = self.inputs.class_values
        label = np.zeros((item.height, item.width),
                         dtype=np.uint8 if max(values) < 256 else np.uint16)
        best = np.full(label.shape, -1.0, dtype=np.float32)
        confidence = 1.0
        for index in indices:
            candidate = self.inputs.candidates[index]
            take = masks[index] & (candidate.activation > best)
            label[take] = values[candidate.class_index]
            best[take] = candidate.activation[take]
            confidence = min(confidence, candidate.probability * scores[index])
        return label, confidence

    def _save_decoder(self, round_id: int, stage: str) -> int:
        backbone = self.inputs.backbone
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "decoder.pt"
            torch.save({"model_id": backbone.model_id, "weights_sha256": backbone.weights_sha256,
                        "state": backbone.decoder_state()}, path)
            return self.inputs.project.rounds.add_checkpoint(
                path, round_id=round_id, description=f"{self.inputs.method} decoder, {stage}").id

    def _trainable(self, candidate: Candidate, mask: np.ndarray) -> bool:
        return candidate.tagged and candidate.item.id not in self.inputs.excluded and mask.any()

    def _sample(self, index: int, mask: np.ndarray, origin: str) -> TrainingSample:
        candidate = self.inputs.candidates[index]
        return TrainingSample(candidate.item.id, candidate.embedding, mask, 1.0, origin,
                              candidate.activation, candidate.initial)


def human_samples(project: Project, items: Sequence[Item], embeddings: Sequence[Embedding],
                  class_values: list[int], weight: float) -> tuple[list[TrainingSample], set[int]]:
    """Training samples from every accepted or corrected mask (one per class present in it), and
    the ids of items people reviewed (their pseudo-labels never train the decoder)."""
    by_id = {item.id: index for index, item in enumerate(items)}
    samples = []
    for item_id, (state, mask) in project.labels.reviewed_masks().items():
        if item_id not in by_id:
            continue
        for value in class_values:
            binary = mask == value
            if binary.any():
                samples.append(TrainingSample(item_id, embeddings[by_id[item_id]], binary,
                                              weight, state.value))
    reviewed = {item_id for item_id, state in project.labels.states().items()
                if state in (LabelState.ACCEPTED, LabelState.CORRECTED, LabelState.REJECTED)}
    return samples, reviewed


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0
