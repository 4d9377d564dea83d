"""WeakMedSAM: image-level tags → CAM → SAM prompt affinity → random walk → pseudo-labels.

Stages (each reports progress and can be cancelled between items):

1. encode the items the next stages read (embedding cache): with the image branch
   (``cam_input="image"``) only the items tagged with a class, whose embeddings the sub-class
   exploration pools; an item the random walk needs later is encoded then. Every other item is
   encoded once the round is stored (stage ``RETRAIN_EMBEDDING``), for Retrain: the first
   pseudo-labels do not wait for it, and a Stop there keeps the round;
2. sub-class exploration: k-means on pooled embeddings of each class's positive items;
3. train the parent + sub-class classifier on the tags: by default a small convolutional branch on
   the image (``cam_input="image"``, see :mod:`..cam.image_classifier` for why), or a head on the
   cached embeddings (``cam_input="embedding"``; the encoder stays frozen either way). ``ensemble``
   classifiers are trained with consecutive seeds and their probabilities and CAMs averaged: a
   classifier trained from scratch on a few hundred tags varies with its seed, the average less;
4. per item: presence probabilities and a CAM per class; each class present
   (:func:`.tag_presence.presence`: the person's tag when the item is tagged, else the presence
   probability ≥ ``gate``) has its CAM propagated by a random walk over SAM-derived affinities
   between neighbouring positions, then thresholded; components whose peak is under
   ``component_evidence`` × the strongest one's are dropped (:mod:`..refine.components`), and
   SAM answers one box per component left (``mask_prompts="boxes"``, the default: on patients
   not used to choose it, masks nearer the reference's size than the thresholded map's;
   ``"none"`` keeps the map's mask, as the original); an absent class gets no pixels. The
   affinity source is SAM's own embedding (``affinity_source="embedding"``, the default:
   measured better) or the original's prompt affinity mining (``"prompts"``: box prompts on a
   grid covering the image, decoded against the item's embedding and averaged). One label
   image per item (0 = background, class label values), saved as a proposal with its CAM,
   affinity and refined maps.

Only image-level tags enter this pipeline; ground-truth masks are used by ``evaluation`` alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ..backbones.embedding_cache import EmbeddingCache
from ..backbones.precision import training_autocast
from ..backbones.sam import PRECISIONS_BY_DTYPE, Embedding, SamBackbone
from ..cam.adl_classifier import image_tensor
from ..cam.embedding_classifier import EmbeddingClassifier, normalise_cam
from ..cam.image_classifier import ImageCamClassifier
from ..cam.rotation_cam import cam_to_shape, dihedral_cam
from ..cam.subclasses import subclass_targets
from ..cam.training import ClassifierTraining, train_classifier
from ..method_settings import WeakMedSamSettings
from ..progress import Progress, ProgressCallback, check_cancel
from ..project import Item, Project, ProjectError
from ..prompts.decode import answer_region
from ..refine import (
    affinity_degree,
    affinity_source_map,
    feature_source_map,
    grid_boxes,
    grid_points,
    neighbour_affinity,
    resize_map,
    transition_matrix,
    walk_cam,
)
from ..refine.components import supported_components
from ..settings_fields import settings_from_params
from ..timing import timed
from ..training_plan import RETRAIN_EMBEDDING
from .context import RunContext
from .prediction import cached_embeddings, check_trained_on, round_models
from .tag_matrix import read_tags
from .tag_presence import PRESENCE_RULE, presence, tagged_presence

METHOD = "weakmedsam"
WALK_GRID = 64   # the random walk's grid (SAM's embedding grid at 1024 px, LiteMedSAM's at 256)
Classifier = ImageCamClassifier | EmbeddingClassifier
Ensemble = list[Classifier]   # classifiers whose probabilities and CAMs are averaged
IMAGE_CHECKPOINT = "weakmedsam-image"           # a checkpoint of the image branch
EMBEDDING_CHECKPOINT = "weakmedsam-embedding"   # … of the head on SAM embeddings
WEAKMEDSAM_KINDS = (IMAGE_CHECKPOINT, EMBEDDING_CHECKPOINT)
ImageLoader = Callable[[int], np.ndarray]   # item index → image
EmbeddingSource = Embedding | Callable[[], Embedding]   # an embedding, or how to get it when needed


@dataclass
class RunReport:
    round_id: int
    items: int
    positives: int
    seconds: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)

    def summary(self) -> str:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return (f"round {self.round_id}: {self.items} items, {self.positives} with a "
                f"pseudo-label; {stages}")


@dataclass
class ItemResult:
    """Everything computed for one item (also used by benchmarks to compare stages)."""

    probabilities: np.ndarray        # (P,)
    cams: np.ndarray                 # (P, H, W) in [0, 1]
    affinity: np.ndarray | None      # (H, W) affinity degree, when any class is predicted present
    refined: np.ndarray              # (P, H, W)
    label: np.ndarray                # (H, W) label image
    confidence: float


def run_weakmedsam(context: RunContext,
                   settings: WeakMedSamSettings | None = None) -> RunReport:
    """Run the whole method on the context's project and store a new round of proposals."""
    settings = settings or WeakMedSamSettings()
    project, backbone = context.project, context.backbone
    timings: dict[str, float] = {}
    tagged = read_tags(project)
    items, classes = tagged.items, tagged.classes
    train_index, labels = tagged.train_index, tagged.labels

    first = _read_first(settings, train_index, labels, items)
    with timed(timings, "embedding"):
        cache = fill_embeddings(context, items, first)
    embeddings = CachedEmbeddings(cache, lambda i: project.item_image(items[i]), len(items))
    with timed(timings, "training"):
        models, losses = train_on_tags(lambda i: project.item_image(items[i]), embeddings,
                                       train_index, labels, settings, backbone,
                                       context.progress, context.cancel)

    params = settings.to_dict() | {
        "presence": PRESENCE_RULE, "backbone": backbone.model_id,
        "weights_sha256": backbone.weights_sha256,
        "precision": {"encoder": PRECISIONS_BY_DTYPE[backbone.autocast_dtype],
                      "classifiers": PRECISIONS_BY_DTYPE[training_autocast(backbone)]}}
    round_id = project.rounds.start_round(METHOD, params)
    try:
        checkpoint = _save_checkpoint(project, models, round_id)
        with timed(timings, "pseudo-labels"):
            positives = _label_items(context, models, items, cache, classes, settings,
                                     round_id, checkpoint)
    except BaseException as error:
        project.rounds.abandon_round(round_id, error)
        raise
    project.rounds.finish_round(round_id, "done", checkpoint_id=checkpoint,
                                metrics={"seconds": timings, "losses": losses})
    rest = sorted(set(range(len(items))) - set(first))
    if rest:
        with timed(timings, RETRAIN_EMBEDDING):
            fill_embeddings(context, items, rest, stage=RETRAIN_EMBEDDING)
    return RunReport(round_id, len(items), positives, timings, losses)


def _read_first(settings: WeakMedSamSettings, train_index: list[int], labels: np.ndarray,
                items: list[Item]) -> Sequence[int]:
    """The items whose embeddings the classifiers read: every item for the head on SAM's
    embedding, else the items tagged with a class (the sub-class exploration pools them)."""
    if settings.cam_input == "embedding":
        return range(len(items))
    return [index for index, row in zip(train_index, labels, strict=True) if row.any()]


class CachedEmbeddings:
    """The items' embeddings, each read from the cache when asked (and encoded then if it is
    not there yet)."""

    def __init__(self, cache: EmbeddingCache, load_image: ImageLoader, count: int) -> None:
        self.cache, self.load_image, self.count = cache, load_image, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Embedding:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.cache.embed(self.load_image(index))


def fill_embeddings(context: RunContext, items: list[Item], indices: Sequence[int], *,
                    stage: str = "embedding") -> EmbeddingCache:
    """The cache with the items at ``indices`` in it (computing what is missing, reported as
    ``stage``)."""
    project = context.project
    cache = project.embedding_cache(context.backbone)
    steps = cache.fill(lambda i: project.item_image(items[i]), indices, cancel=context.cancel)
    for done, total in steps:
        context.report(stage, done, total)
    context.check_cancel()
    return cache


def embed_items(context: RunContext, items: list[Item]) -> list[Embedding]:
    """Embeddings of every item, from the cache (computing what is missing)."""
    cache = fill_embeddings(context, items, range(len(items)))
    return [cache.embed(context.project.item_image(item)) for item in items]


def train_on_tags(load_image: ImageLoader, embeddings: Sequence[Embedding],
                  train_index: list[int],
                  labels: np.ndarray, settings: WeakMedSamSettings, backbone: SamBackbone,
                  progress: ProgressCallback, cancel: threading.Event | None,
                  ) -> tuple[Ensemble, list[float]]:
    """``settings.ensemble`` classifiers on the tagged items (``train_index`` indexes
    ``embeddings`` and ``load_image``), member k with seed ``settings.seed + k``, on the
    backbone's device and in the precision SAM's encoder runs in (bf16 or float32,
    :func:`..backbones.precision.training_autocast`); the losses of every member's epochs, one
    after the other."""
    device, autocast = backbone.device, training_autocast(backbone)
    pooled = _pooled_positives(embeddings, train_index, labels)
    if settings.cam_input == "image":
        inputs = image_inputs(load_image, train_index, settings.image_size, "training: images",
                              progress, cancel)
    else:
        inputs = torch.stack([embeddings[i].features.half() for i in train_index])
    models: Ensemble = []
    losses: list[float] = []
    for member in range(settings.ensemble):
        def on_epoch(epoch: int, epochs: int, loss: float, member: int = member) -> None:
            progress(Progress("training", member * epochs + epoch, settings.ensemble * epochs,
                              loss=loss))

        seeded = dataclasses.replace(settings, seed=settings.seed + member)
        model, member_losses = _train_member(inputs, pooled, labels, seeded, device, autocast,
                                             on_epoch, cancel)
        models.append(model)
        losses.extend(member_losses)
    return models, losses


def _pooled_positives(embeddings: Sequence[Embedding], train_index: list[int],
                      labels: np.ndarray) -> np.ndarray:
    """(N, C) mean embedding features of the training items tagged with a class, what the
    sub-class exploration clusters; rows of items without a class stay 0 (never read)."""
    rows = [(row, embeddings[index].features.float().mean(dim=(1, 2)).numpy())
            for row, index in enumerate(train_index) if labels[row].any()]
    pooled = np.zeros((len(train_index), rows[0][1].size if rows else 1), dtype=np.float32)
    for row, features in rows:
        pooled[row] = features
    return pooled


def _train_member(inputs: torch.Tensor, pooled: np.ndarray, labels: np.ndarray,
                  settings: WeakMedSamSettings, device: torch.device,
                  autocast: torch.dtype | None, on_epoch,
                  cancel: threading.Event | None) -> tuple[Classifier, list[float]]:
    """Sub-class targets by k-means on the pooled embeddings, then one classifier."""
    children = subclass_targets(pooled, labels, settings.subclasses, settings.seed)
    training = ClassifierTraining(
        epochs=settings.epochs, batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, child_weight=settings.child_weight,
        min_steps=settings.min_steps, seed=settings.seed, autocast=autocast,
    )
    torch.manual_seed(settings.seed)
    if settings.cam_input == "image":
        model: Classifier = ImageCamClassifier(labels.shape[1], children.shape[1])
        flips: tuple[int, ...] = (-1, -2)   # and transposes: orientation carries no tag
    else:
        model = EmbeddingClassifier(labels.shape[1], children.shape[1],
                                    in_channels=inputs.shape[1])
        model.set_input_statistics(inputs)
        flips = (-1,)
    model = train_classifier(
        model, inputs, labels, children, training, device=device, flip_axes=flips,
        transpose=settings.cam_input == "image", cancel=cancel, on_epoch=on_epoch,
    )
    return model, training.losses


def image_inputs(load_image: ImageLoader, indices: list[int], size: int, stage: str,
                 progress: ProgressCallback, cancel: threading.Event | None) -> torch.Tensor:
    """The images at ``indices`` as one (N, 3, size, size) float16 batch, reporting ``stage``."""
    images = []
    for done, index in enumerate(indices):
        check_cancel(cancel)
        images.append(image_tensor(load_image(index), size).half())
        progress(Progress(stage, done + 1, len(indices)))
    return torch.stack(images)


def label_item(backbone: SamBackbone, models: Ensemble, image: np.ndarray,
               embedding: EmbeddingSource, class_values: list[int],
               settings: WeakMedSamSettings, *, tagged: np.ndarray | None = None) -> ItemResult:
    """CAM, affinity source map, random walk and label image for one item. ``tagged``: the
    person's tag per class (:func:`.tag_presence.tagged_presence`), None for an untagged item; it
    decides which classes are present, over the classifier's probabilities. ``embedding`` may
    be a function that gives it: it is then called only when something reads it (the head on
    the embedding, or the walk of a class present), at most once."""
    if callable(embedding):
        embedding = functools.cache(embedding)
    probabilities, cams = cam_at_item_size(backbone, models, image, embedding, settings)
    present = presence(tagged, probabilities, settings.gate)
    refined = np.zeros_like(cams)
    masks = np.zeros(cams.shape, dtype=bool)
    affinity = None
    if present.any():
        transition, affinity = walk_graph(backbone, _resolved(embedding), settings)
    for c in np.flatnonzero(present):
        refined[c] = walk_cam(cams[c], transition, grid_size=WALK_GRID, steps=settings.steps)
        masks[c] = supported_components(refined[c] > settings.threshold, refined[c],
                                        settings.component_evidence)
        if settings.mask_prompts != "none" and masks[c].any():
            masks[c] = answer_region(backbone, _resolved(embedding), refined[c], masks[c],
                                     settings.mask_prompts)
    label = _label_image(masks, refined, class_values)
    belief = probabilities if tagged is None else np.asarray(tagged, dtype=np.float64)
    confidence = _confidence(belief, present, refined, masks)
    return ItemResult(probabilities, cams, affinity, refined, label, confidence)


def _resolved(embedding: EmbeddingSource) -> Embedding:
    return embedding() if callable(embedding) else embedding


def cam_at_item_size(backbone: SamBackbone, models: Ensemble, image: np.ndarray,
                     embedding: EmbeddingSource, settings: WeakMedSamSettings,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Presence probabilities (P,) and CAMs (P, H, W) in [0, 1] at the item's full size: the
    ensemble's mean probability, and its mean CAM scaled so that each class's peak is 1."""
    answers = [_member_cam(backbone, model, image, embedding, settings) for model in models]
    probabilities = np.mean([p for p, _ in answers], axis=0)
    cams = np.mean([c for _, c in answers], axis=0)
    peaks = cams.max(axis=(-2, -1), keepdims=True)
    return probabilities, cams / np.maximum(peaks, 1e-6)


def _member_cam(backbone: SamBackbone, model: Classifier, image: np.ndarray,
                embedding: EmbeddingSource, settings: WeakMedSamSettings,
                ) -> tuple[np.ndarray, np.ndarray]:
    """One classifier's probabilities (P,) and min–max scaled CAMs (P, H, W)."""
    if isinstance(model, ImageCamClassifier):
        tensor = image_tensor(image, settings.image_size).to(backbone.device)
        probabilities, raw = dihedral_cam(model, tensor)
        cams = normalise_cam(raw.float()).cpu().numpy()
        return probabilities.cpu().numpy(), cam_to_shape(cams, image.shape[:2])
    embedding = _resolved(embedding)
    probabilities, raw = model.cam(embedding.features[None].float().to(backbone.device))
    valid = _valid_grid(embedding, raw.shape[-1], backbone.preprocessing.size)
    cams = normalise_cam(raw, valid)
    cams = backbone.to_item_frame(cams.float(), embedding)[0].cpu().numpy()
    return probabilities[0].cpu().numpy(), cams


def classifier_checkpoint(models: Ensemble) -> dict:
    """What a classifier checkpoint stores: the kind, and each member's configuration and
    weights."""
    if all(isinstance(model, ImageCamClassifier) for model in models):
        return {"kind": IMAGE_CHECKPOINT,
                "members": [{"config": m.config(), "state": m.state_dict()} for m in models]}
    return {"kind": EMBEDDING_CHECKPOINT, "members": [{"state": m.state_dict()} for m in models]}


def ensemble_from_checkpoint(saved: dict, device: torch.device) -> Ensemble:
    """WeakMedSAM's ensemble back from its checkpoint (eval mode, on ``device``): the image
    branch's or the head on SAM embeddings."""
    kind = saved.get("kind")
    if kind not in WEAKMEDSAM_KINDS:
        raise ProjectError(f"a {kind!r} checkpoint is not a WeakMedSAM classifier")
    return [_member(kind, member).to(device).eval() for member in saved["members"]]


def _member(kind: str, member: dict) -> Classifier:
    """One classifier of a WeakMedSAM checkpoint (the head on embeddings stores no
    configuration: its sizes are read from its weights)."""
    if kind == EMBEDDING_CHECKPOINT:
        return EmbeddingClassifier.from_state(member["state"])
    model = ImageCamClassifier(**member["config"])
    model.load_state_dict(member["state"], strict=True)
    return model


def walk_graph(backbone: SamBackbone, embedding: Embedding,
               settings: WeakMedSamSettings) -> tuple[sp.csr_matrix, np.ndarray]:
    """The random walk's transition matrix on the grid, and the affinity's degree map at the
    item's size (low along boundaries; stored as the "affinity" map for people to inspect)."""
    source = _affinity_source(backbone, embedding, settings)
    affinity = neighbour_affinity(source, radius=settings.radius, beta=settings.beta)
    degree = affinity_degree(affinity, (WALK_GRID, WALK_GRID))
    return transition_matrix(affinity), resize_map(degree, embedding.original_shape)


def _affinity_source(backbone: SamBackbone, embedding: Embedding,
                     settings: WeakMedSamSettings) -> np.ndarray:
    """(C, grid, grid) or (grid, grid) features whose differences define the affinities."""
    if settings.affinity_source == "embedding":
        features = embedding.features.float().cpu().numpy()
        rows, cols = _valid_grid(embedding, features.shape[-1], backbone.preprocessing.size)
        inside = features[:, :rows, :cols]
        return feature_source_map(resize_map(inside, (len(inside), WALK_GRID, WALK_GRID)))
    height, width = embedding.original_shape
    if settings.prompts == "points":
        points = grid_points(height, width, grid=settings.grid)[:, None, :]
        decoded = backbone.decode(embedding, points=points,
                                  point_labels=np.ones(points.shape[:2], dtype=np.int64))
    else:
        boxes = grid_boxes(height, width, grid=settings.grid, scales=settings.box_scales)
        decoded = backbone.decode(embedding, boxes=boxes)
    probabilities = torch.sigmoid(decoded.logits[:, 0]).cpu().numpy()
    return resize_map(affinity_source_map(probabilities), (WALK_GRID, WALK_GRID))


def _valid_grid(embedding: Embedding, grid: int, size: int) -> tuple[int, int]:
    """The part of the embedding grid that covers the image (not the padding)."""
    h, w = embedding.resized_shape
    return max(1, round(h * grid / size)), max(1, round(w * grid / size))


def _label_image(masks: np.ndarray, refined: np.ndarray, values: list[int]) -> np.ndarray:
    """One label per pixel: the class whose refined map is highest among those masked there."""
    label = np.zeros(masks.shape[1:], dtype=np.uint8 if max(values, default=1) < 256 else np.uint16)
    if masks.any():
        score = np.where(masks, refined, -1.0)
        winner = score.argmax(axis=0)
        hit = masks.any(axis=0)
        label[hit] = np.asarray(values)[winner[hit]]
    return label


def _confidence(belief: np.ndarray, present: np.ndarray, refined: np.ndarray,
                masks: np.ndarray) -> float:
    """Lowest per-class confidence. ``belief`` is the presence probability per class, or for a
    tagged item the tag itself (1 present, 0 absent: the person said so). A present class scores
    its belief times the mean refined score inside its mask (times 0.5 when the walk left no
    pixels); an absent class one minus its belief — 1 for a class tagged absent."""
    scores = []
    for c, b in enumerate(belief):
        if present[c] and masks[c].any():
            scores.append(float(b) * float(refined[c][masks[c]].mean()))
        elif present[c]:
            scores.append(float(b) * 0.5)  # present, but the walk left no pixels
        else:
            scores.append(1.0 - float(b))
    return min(scores) if scores else 0.0


def _label_items(context: RunContext, models: Ensemble, items: list[Item],
                 cache: EmbeddingCache, classes, settings, round_id: int,
                 checkpoint: int) -> int:
    project, backbone = context.project, context.backbone
    values = [c.label_value for c in classes]
    tags = project.catalog.all_tags()
    params = settings.to_dict() | {"presence": PRESENCE_RULE}
    positives = 0
    for index, item in enumerate(items):
        context.check_cancel()
        tagged = tagged_presence(item, tags, classes)
        image = project.item_image(item)
        result = label_item(backbone, models, image, lambda image=image: cache.embed(image),
                            values, settings, tagged=tagged)
        positives += bool(result.label.any())
        project.labels.add_proposal(item.id, result.label, method=METHOD, round_id=round_id,
                                    checkpoint_id=checkpoint,
                                    params=params | {"tagged": tagged is not None},
                                    confidence=result.confidence)
        if settings.save_maps:
            _save_maps(project, item, result, classes, round_id)
        context.report("pseudo-labels", index + 1, len(items), item.name)
    return positives


def _save_maps(project: Project, item: Item, result: ItemResult, classes, round_id: int) -> None:
    for c, image_class in enumerate(classes):
        project.maps.add(item.id, "cam", result.cams[c], round_id=round_id,
                         class_id=image_class.id)
        if result.refined[c].any():
            project.maps.add(item.id, "refined", result.refined[c], round_id=round_id,
                             class_id=image_class.id)
    if result.affinity is not None:
        project.maps.add(item.id, "affinity", result.affinity, round_id=round_id)


def _save_checkpoint(project: Project, models: Ensemble, round_id: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "classifier.pt"
        torch.save(classifier_checkpoint(models), path)
        return project.rounds.add_checkpoint(path, round_id=round_id,
                                             description="WeakMedSAM classifier").id


# -- new images --------------------------------------------------------------------------------
class WeakMedSamPredictor:
    """The classifier ensemble of one WeakMedSAM round, ready to segment items that were never
    tagged (:mod:`.prediction` writes their proposals): CAM, presence gate, random walk on the
    SAM embedding's affinities and threshold, as in the round itself."""

    def __init__(self, project: Project, backbone: SamBackbone, round_) -> None:
        # a round from before SAM answered its masks kept the thresholded map, every component
        self.settings = settings_from_params(
            WeakMedSamSettings, {"mask_prompts": "none", "component_evidence": 0.0} | round_.params)
        if round_.params.get("backbone") is not None:   # rounds before it was recorded: none
            check_trained_on(round_, round_.params["backbone"], round_.params["weights_sha256"],
                             backbone)
        saved = round_models(project, round_.checkpoint_id, round_)
        self.models = ensemble_from_checkpoint(saved, backbone.device)
        self.values = [c.label_value for c in project.catalog.classes()]
        if self.models[0].parent.out_channels != len(self.values):
            raise ProjectError(f"round {round_.id} was trained on "
                               f"{self.models[0].parent.out_channels} classes and the project "
                               f"has {len(self.values)} now; train again")
        self.backbone = backbone

    @contextlib.contextmanager
    def adapted(self) -> Iterator[None]:
        """WeakMedSAM trains no part of SAM: the backbone stays as it is."""
        yield

    def segment(self, project: Project, items: list[Item], *, sweep: bool = True,
                ) -> Iterator[tuple[Item, np.ndarray, float]]:
        """``(item, label image, confidence)`` per item."""
        cache = cached_embeddings(project, self.backbone, items, sweep=sweep)
        for item in items:
            image = project.item_image(item)
            result = label_item(self.backbone, self.models, image, cache.embed(image),
                                self.values, self.settings)
            yield item, result.label, result.confidence
