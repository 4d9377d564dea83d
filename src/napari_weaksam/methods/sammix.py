"""SAM-Mix: a tag classifier and SAM trained together — the classifier on every tag (focal loss),
SAM on the few masks people accepted or corrected (Dice of the best of SAM's three answers),
prompted by the classifier's GradCAM: the thresholded map's bounding box as the box prompt and
the map as the dense mask prompt (METHODS.md 1.C). New images get GradCAM prompts only, never
boxes from a mask.

Stages (progress reported, cancellable between batches and items):

1. encode every item once (embedding cache; scope "decoder" trains on the cached embeddings);
2. the classifier's inputs (every item, resized to its input size);
3. joint training, one loop: every step is the focal loss of a batch of tagged items plus, on
   steps spread evenly over the run after a warm-up (``seg_epochs`` passes over people's masks
   from step ``seg_warmup`` × steps), λ times the segmentation loss (:func:`multimask_loss`)
   of one person's mask, prompted by the current classifier's GradCAM of that item (so SAM
   learns to answer the prompts it will be given; a prompt that misses the mask trains nothing).
   With scope "decoder+lora" the image is encoded with gradients to the LoRA adapters, and
   after training every item is encoded again by the adapted encoder (a cache of its own: the
   signature follows the adapters);
4. one project round: per item and class present (the tag, else the classifier's probability ≥
   ``gate``) the GradCAM prompts and SAM's best answer of three (highest predicted IoU); the
   checkpoint holds the classifier and exactly what SAM trained.

The backbone is left as it was given (pretrained decoder, no adapters), so another method run
afterwards starts from the same model.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from ..backbones.lora import LoraConfig
from ..backbones.sam import Embedding, SamBackbone
from ..cam.adl_training import recalibrate_batch_norm
from ..cam.gradcam import cam_prompts
from ..cam.tag_classifier import (
    TagClassifier,
    build_tag_classifier,
    checkpoint,
    focal_loss,
    from_checkpoint,
    tag_inputs,
)
from ..cam.training import augment
from ..method_settings import SamMixSettings
from ..project import ImageClass, Item, Project, ProjectError
from ..project.rounds import Round
from ..prompts.dense import dense_prompt, low_res_frame
from ..settings_fields import settings_from_params
from ..timing import timed
from ..training_loop import LoopSettings, train_loop, training_length
from .context import RunContext
from .prediction import cached_embeddings, check_trained_on, round_models
from .tag_matrix import read_tags
from .tag_presence import PRESENCE_RULE, presence, tagged_presence
from .weakmedsam import embed_items

METHOD = "sammix"
SMOOTHING = 1.0   # the authors' Dice smoothing


@dataclass
class MaskSample:
    """One class of one person's mask: what the segmentation loss trains on."""

    index: int             # into the run's items
    class_index: int
    mask: np.ndarray       # bool, item frame
    origin: str            # "accepted" or "corrected"


@dataclass
class SamMixReport:
    items: int
    masks: int                 # people's (item, class) masks SAM trained on
    round_id: int
    losses: list[float]        # mean joint loss per epoch
    seconds: dict[str, float]

    def summary(self) -> str:
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return (f"{self.items} items, SAM trained on {self.masks} reviewed masks; round "
                f"{self.round_id}; {timing}")


def run_sammix(context: RunContext, settings: SamMixSettings | None = None) -> SamMixReport:
    """Run SAM-Mix on the context's project: one round with a proposal for every item."""
    settings = settings or SamMixSettings()
    project, backbone = context.project, context.backbone
    tagged = read_tags(project)
    items, classes = tagged.items, tagged.classes
    train_index, labels = tagged.train_index, tagged.labels
    samples = reviewed_samples(context, items, classes)
    seconds: dict[str, float] = {}
    try:
        backbone.set_trainable_scope(settings.scope, _lora(settings))
        embeddings = None   # scope decoder+lora: encoded with gradients, then again after
        if settings.scope == "decoder":
            with timed(seconds, "embedding"):
                embeddings = embed_items(context, items)
        with timed(seconds, "classifier: images"):
            images = _classifier_inputs(context, items, settings.classifier.input_size)
        with timed(seconds, "training"):
            model, losses = train_jointly(context, images, train_index, labels, samples,
                                          embeddings, settings,
                                          lambda i: project.item_image(items[i]))
        if embeddings is None:   # the adapted encoder: every item again
            with timed(seconds, "embedding (adapted)"):
                embeddings = embed_items(context, items)
        round_id = _store_round(context, items, classes, images, embeddings, model, samples,
                                settings, seconds, losses)
    finally:
        backbone.reset_trained()
        backbone.set_trainable_scope("decoder")
    return SamMixReport(len(items), len(samples), round_id, losses, seconds)


def reviewed_samples(context: RunContext, items: list[Item],
                     classes: list[ImageClass]) -> list[MaskSample]:
    """One sample per class present in each mask people accepted or corrected."""
    by_id = {item.id: index for index, item in enumerate(items)}
    samples = []
    for item_id, (state, mask) in sorted(context.project.labels.reviewed_masks().items()):
        if item_id not in by_id:
            continue
        for c, image_class in enumerate(classes):
            binary = mask == image_class.label_value
            if binary.any():
                samples.append(MaskSample(by_id[item_id], c, binary, state.value))
    return samples


# -- joint training ----------------------------------------------------------------------------
def train_jointly(context: RunContext, images: torch.Tensor, train_index: list[int],
                  labels: np.ndarray, samples: list[MaskSample],
                  embeddings: list[Embedding] | None, settings: SamMixSettings,
                  load_image: Callable[[int], np.ndarray],
                  ) -> tuple[TagClassifier, list[float]]:
    """The classifier (fresh, under the classifier's seed) and SAM's trained parameters in one
    loop; returns the classifier in eval mode and the mean joint loss per epoch. ``embeddings``:
    the cached ones (scope "decoder"), or None to encode ``load_image(index)`` with gradients
    (scope "decoder+lora")."""
    backbone = context.backbone
    config = settings.classifier
    torch.manual_seed(config.seed)
    model = build_tag_classifier(labels.shape[1], config).to(backbone.device)
    generator = torch.Generator().manual_seed(settings.seed)
    loop = LoopSettings(epochs=config.epochs, batch_size=config.batch_size,
                        learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                        min_steps=config.min_steps, seed=config.seed, schedule=config.schedule)
    epochs, batches = training_length(len(train_index), loop)
    plan = seg_schedule(epochs * batches, len(samples), settings.seg_epochs, generator,
                        start=int(settings.seg_warmup * epochs * batches))
    tagged = images[train_index]
    targets = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    step = 0

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        nonlocal step
        batch = augment(tagged[index].float(), generator, (-1, -2), True).to(backbone.device)
        loss = focal_loss(model(batch), targets[index].to(backbone.device), config)
        chosen = plan[step]
        step += 1
        if chosen >= 0:
            sample = samples[chosen]
            embedding = (embeddings[sample.index] if embeddings is not None else
                         backbone.encode_for_training([load_image(sample.index)])[0])
            seg_loss = segmentation_loss(backbone, model, images[sample.index], embedding,
                                         sample, settings)
            if seg_loss is not None:
                loss = loss + settings.seg_weight * seg_loss
        return loss

    parameters = [{"params": list(model.parameters())}]
    if samples:
        parameters.append({"params": backbone.trainable_parameters(),
                           "lr": settings.seg_learning_rate, "weight_decay": 0.0})
    model.train()
    losses = train_loop(
        parameters, len(train_index), batch_loss, loop, generator=generator,
        cancel=context.cancel,
        on_epoch=lambda e, n, value: context.report("training", e, n,
                                                    f"{len(samples)} reviewed masks", value))
    if config.recalibrate_batch_norm:
        recalibrate_batch_norm(model, tagged, config.batch_size, device=backbone.device,
                               cancel=context.cancel)
    return model.eval(), losses


def seg_schedule(steps: int, samples: int, passes: int, generator: torch.Generator,
                 start: int = 0) -> list[int]:
    """Which person's mask each optimiser step also trains on (-1: none): ``passes`` shuffled
    passes over ``samples`` masks, spread evenly over steps ``start`` … ``steps`` − 1 (every
    such step carries one when there are more mask visits than steps; the rest are dropped)."""
    plan = [-1] * steps
    span = steps - start
    if samples == 0 or span <= 0:
        return plan
    visits = torch.cat([torch.randperm(samples, generator=generator) for _ in range(passes)])
    count = min(span, len(visits))
    for k in range(count):
        plan[start + (k * span) // count] = int(visits[k])
    return plan


def segmentation_loss(backbone: SamBackbone, model: TagClassifier, image: torch.Tensor,
                      embedding: Embedding, sample: MaskSample,
                      settings: SamMixSettings) -> torch.Tensor | None:
    """SAM's answers to the classifier's current GradCAM prompts against the person's mask, in
    the decoder's low-resolution frame (:func:`multimask_loss`); None when the prompt's region
    misses the mask: SAM cannot answer a lesion it is not pointed at, and the loss would only
    teach it to answer nothing (it did: every answer empty after 20 masks on brain MR)."""
    threshold = settings.classifier.cam_threshold
    activation = _activations(model, image[None], sample.mask.shape,
                              settings.classifier.cam_views)[1][sample.class_index]
    if not (sample.mask & (activation >= threshold)).any():
        return None
    low_res, iou = decode_cam_prompts(backbone, embedding, activation, threshold)
    target, (h, w) = low_res_frame(sample.mask, embedding, backbone.preprocessing.size)
    return multimask_loss(low_res[0, :, :h, :w], iou[0], target[:h, :w].to(low_res.device),
                          settings.mask_focal_weight)


def multimask_loss(logits: torch.Tensor, predicted_iou: torch.Tensor,
                   target: torch.Tensor, focal_weight: float = 0.0) -> torch.Tensor:
    """SAM's own multimask recipe with the authors' Dice: the loss of the best of the (3, h, w)
    answers only — its soft Dice loss plus ``focal_weight`` × its focal loss (SAM trains with
    20 : 1; α 0.25, γ 2) — plus the mean squared error between the predicted IoU (3,) and each
    answer's real IoU, so that inference's choice (the highest predicted IoU) follows what was
    learnt. Not BCE: beside Dice it made the decoder answer nothing at all for small lesions
    under the broad prompts of a brain MR slice (every logit below −2 after 5 masks). The focal
    term pushes lesion pixels harder than Dice alone, and its γ keeps the easy background from
    outweighing the lesion as BCE's did; off by default: on a run whose answers had collapsed it
    gave Dice 0.098 where the warm-up gave 0.285 (README)."""
    losses = torch.stack([soft_dice_loss(answer, target) for answer in logits])
    if focal_weight:
        focal = sigmoid_focal_loss(logits.float(), target.expand_as(logits).float(),
                                   alpha=0.25, gamma=2.0, reduction="none").mean(dim=(1, 2))
        losses = losses + focal_weight * focal
    with torch.no_grad():
        answers = logits > 0
        overlap = (answers & (target > 0.5)).flatten(1).sum(1).float()
        union = (answers | (target > 0.5)).flatten(1).sum(1).float()
        real_iou = overlap / union.clamp(min=1)
    return losses.min() + F.mse_loss(predicted_iou.float(), real_iou)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice of one mask, smoothing 1 (as the authors')."""
    probability = torch.sigmoid(logits.float())
    overlap = (probability * target).sum()
    return 1 - (2 * overlap + SMOOTHING) / (probability.sum() + target.sum() + SMOOTHING)


def decode_cam_prompts(backbone: SamBackbone, embedding: Embedding, activation: np.ndarray,
                       threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's three answers (1, 3, 256, 256) and their predicted IoU (1, 3) to one item's CAM
    prompts: the box around ``activation ≥ threshold`` (the central box when nothing passes) and
    that region as the dense mask prompt; under the caller's grad mode."""
    regions, boxes = cam_prompts(activation[None], threshold)
    mask_logits = dense_prompt(regions[0], embedding, backbone.preprocessing.size)
    return backbone.decode_low_res(embedding, boxes=boxes, mask_logits=mask_logits,
                                   multimask=True)


# -- proposals ---------------------------------------------------------------------------------
def _store_round(context: RunContext, items: list[Item], classes: list[ImageClass],
                 images: torch.Tensor, embeddings: list[Embedding], model: TagClassifier,
                 samples: list[MaskSample], settings: SamMixSettings,
                 seconds: dict[str, float], losses: list[float]) -> int:
    project, backbone = context.project, context.backbone
    params = settings.to_dict() | {"backbone": backbone.model_id, "presence": PRESENCE_RULE,
                                   "reviewed_items": sorted({items[s.index].id
                                                             for s in samples})}
    round_id = project.rounds.start_round(METHOD, params)
    try:
        checkpoint_id = _save_checkpoint(context, model, settings, round_id)
        tags = project.catalog.all_tags()
        with timed(seconds, "pseudo-labels"):
            for index, (item, embedding) in enumerate(zip(items, embeddings, strict=True)):
                context.check_cancel()
                label, confidence, maps = segment_item(
                    backbone, model, images[index], embedding,
                    tagged_presence(item, tags, classes), classes, settings)
                project.labels.add_proposal(item.id, label, method=METHOD,
                                            round_id=round_id, checkpoint_id=checkpoint_id,
                                            params=params, confidence=confidence)
                if settings.save_maps:
                    for c, activation in maps.items():
                        project.maps.add(item.id, "cam", activation, round_id=round_id,
                                         class_id=classes[c].id)
                context.report("pseudo-labels", index + 1, len(items), item.name)
        metrics = {"stage": "joint training", "losses": losses, "seconds": seconds,
                   "people's masks": len(samples), "scope": settings.scope}
        project.rounds.finish_round(round_id, "done", metrics=metrics,
                                    checkpoint_id=checkpoint_id)
    except BaseException as error:
        project.rounds.abandon_round(round_id, error)
        raise
    return round_id


def segment_item(backbone: SamBackbone, model: TagClassifier, image: torch.Tensor,
                 embedding: Embedding, tagged: np.ndarray | None, classes: list[ImageClass],
                 settings: SamMixSettings,
                 ) -> tuple[np.ndarray, float, dict[int, np.ndarray]]:
    """One item's label image (per pixel the class with the highest CAM among those SAM
    masked there), its confidence (the lowest over its classes of probability × SAM's
    predicted IoU; for an item with no class, 1 − the highest probability, or 1 when tagged)
    and the CAMs of the classes present."""
    shape = embedding.original_shape
    probabilities, activations = _activations(model, image[None], shape,
                                              settings.classifier.cam_views)
    present = np.flatnonzero(presence(tagged, probabilities, settings.gate)).tolist()
    values = [c.label_value for c in classes]
    label = np.zeros(shape, dtype=np.uint8 if max(values) < 256 else np.uint16)
    best = np.full(shape, -1.0, dtype=np.float32)
    scores = []
    for c in present:
        activation = activations[c]
        with torch.inference_mode():
            low_res, iou = decode_cam_prompts(backbone, embedding, activation,
                                              settings.classifier.cam_threshold)
        chosen = int(iou[0].argmax())
        logits = backbone.to_item_frame(low_res[:, chosen:chosen + 1].float(), embedding)
        take = (logits[0, 0] > 0).cpu().numpy() & (activation > best)
        label[take] = values[c]
        best[take] = activation[take]
        scores.append(float(probabilities[c]) * float(iou[0, chosen]))
    if scores:
        confidence = min(scores)
    else:
        confidence = 1.0 if tagged is not None else 1.0 - float(probabilities.max())
    return label, confidence, {c: activations[c] for c in present}


def _activations(model: TagClassifier, image: torch.Tensor, shape: tuple[int, int],
                 views: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (P,) and CAMs (P, H, W) in [0, 1] at the item's size, in eval mode (the
    model's mode is put back)."""
    training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        probabilities, maps = model.normalised_cam(image.float().to(device), size=shape,
                                                     views=views)
    finally:
        model.train(training)
    return probabilities[0].cpu().numpy(), maps[0].float().cpu().numpy()


def _classifier_inputs(context: RunContext, items: list[Item], size: int) -> torch.Tensor:
    project = context.project
    batch = []
    for index, item in enumerate(items):
        context.check_cancel()
        batch.append(tag_inputs([project.item_image(item)], size)[0])
        context.report("classifier: images", index + 1, len(items))
    return torch.stack(batch)


def _lora(settings: SamMixSettings) -> LoraConfig | None:
    if settings.scope == "decoder":
        return None
    return LoraConfig(rank=settings.lora_rank, alpha=float(settings.lora_rank),
                      seed=settings.seed)


def _save_checkpoint(context: RunContext, model: TagClassifier, settings: SamMixSettings,
                     round_id: int) -> int:
    backbone = context.backbone
    saved = {"classifier": checkpoint(model, settings.classifier),
             "segmenter": {"model_id": backbone.model_id,
                           "weights_sha256": backbone.weights_sha256,
                           "state": backbone.trained_state()}}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sammix.pt"
        torch.save(saved, path)
        return context.project.rounds.add_checkpoint(
            path, round_id=round_id,
            description=f"{METHOD}: tag classifier + SAM {settings.scope}").id


# -- new images --------------------------------------------------------------------------------
class SamMixPredictor:
    """The classifier and SAM that SAM-Mix trained in one round, ready to segment items that
    were never tagged (:mod:`.prediction` writes their proposals)."""

    def __init__(self, project: Project, backbone: SamBackbone, round_: Round) -> None:
        saved = round_models(project, round_.checkpoint_id, round_)
        segmenter = saved["segmenter"]
        check_trained_on(round_, segmenter["model_id"], segmenter["weights_sha256"], backbone)
        self.model, classifier_settings = from_checkpoint(saved["classifier"],
                                                          device=backbone.device)
        self.input_size = classifier_settings.input_size
        self.classes = project.catalog.classes()
        if self.model.config()["num_classes"] != len(self.classes):
            raise ProjectError(f"round {round_.id} was trained on "
                               f"{self.model.config()['num_classes']} classes and the project "
                               f"has {len(self.classes)} now; train again")
        self.settings = settings_from_params(SamMixSettings, round_.params)
        self.backbone, self._state = backbone, saved["segmenter"]["state"]

    @contextlib.contextmanager
    def adapted(self) -> Iterator[None]:
        """The backbone with what SAM trained in the round (pretrained again afterwards)."""
        try:
            self.backbone.set_trainable_scope(self.settings.scope, _lora(self.settings))
            self.backbone.load_trained_state(self._state)
            yield
        finally:
            self.backbone.reset_trained()
            self.backbone.set_trainable_scope("decoder")

    def segment(self, project: Project, items: list[Item], *, sweep: bool = True,
                ) -> Iterator[tuple[Item, np.ndarray, float]]:
        """``(item, label image, confidence)`` per item, inside :meth:`adapted`; ``sweep``
        as in :meth:`EmbeddingCache.fill` (off on a worker that shares the cache)."""
        cache = cached_embeddings(project, self.backbone, items, sweep=sweep)
        for item in items:
            pixels = project.item_image(item)
            image = tag_inputs([pixels], self.input_size)[0]
            label, confidence, _maps = segment_item(self.backbone, self.model, image,
                                                    cache.embed(pixels), None, self.classes,
                                                    self.settings)
            yield item, label, confidence
