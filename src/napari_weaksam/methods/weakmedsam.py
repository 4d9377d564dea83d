"""WeakMedSAM: image-level tags → CAM → SAM prompt affinity → random walk → pseudo-labels.

Stages (each reports progress and can be cancelled between items):

1. encode every item once (embedding cache);
2. sub-class exploration: k-means on pooled embeddings of each class's positive items;
3. train the parent + sub-class classifier on the cached embeddings (the encoder stays frozen);
4. per item: presence probabilities and a CAM per class; for items predicted positive, box prompts
   on a grid covering the image are decoded against the item's embedding and averaged into an
   affinity source map; the CAM is propagated by a random walk over that map's affinities, gated by
   the presence probability and thresholded. One label image per item (0 = background, class
   label values), saved as a proposal with its CAM, affinity and refined maps.

Only image-level tags enter this pipeline; ground-truth masks are used by ``evaluation`` alone.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..backbones.sam import Embedding, SamBackbone
from ..cam.embedding_classifier import EmbeddingClassifier, normalise_cam
from ..cam.subclasses import subclass_targets
from ..cam.training import ClassifierTraining, train_classifier
from ..progress import Progress, ProgressCallback, check_cancel
from ..project import Item, Project, ProjectError
from ..refine import affinity_source_map, grid_boxes, grid_points, refine_cam, threshold_map
from .tag_matrix import tag_matrix

METHOD = "weakmedsam"


@dataclass
class WeakMedSamSettings:
    """Parameters of a run; stored with every proposal as its provenance."""

    subclasses: int = 4
    child_weight: float = 0.5
    epochs: int = 12
    min_steps: int = 150
    batch_size: int = 16
    learning_rate: float = 1e-3
    grid: int = 4
    prompts: str = "boxes"   # "boxes" (LiteMedSAM answers boxes) or "points" (as the original)
    box_scales: tuple[float, ...] = (0.25, 0.5)
    radius: int = 5
    beta: float = 4.0
    steps: int = 4
    threshold: float = 0.5
    gate: float = 0.5
    seed: int = 0
    save_maps: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RunReport:
    round_id: int
    items: int
    positives: int
    seconds: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)


@dataclass
class ItemResult:
    """Everything computed for one item (also used by benchmarks to compare stages)."""

    probabilities: np.ndarray        # (P,)
    cams: np.ndarray                 # (P, H, W) in [0, 1]
    affinity: np.ndarray | None      # (H, W), when any class is predicted present
    refined: np.ndarray              # (P, H, W)
    label: np.ndarray                # (H, W) label image
    confidence: float


def run_weakmedsam(project: Project, backbone: SamBackbone,
                   settings: WeakMedSamSettings | None = None, *,
                   progress: ProgressCallback | None = None,
                   cancel: threading.Event | None = None) -> RunReport:
    """Run the whole method on ``project`` and store a new round of proposals."""
    settings = settings or WeakMedSamSettings()
    report_progress = progress or (lambda _p: None)
    timings: dict[str, float] = {}
    items = project.catalog.items()
    classes = project.catalog.classes()
    if not classes:
        raise ProjectError(f"{project.root}: the project has no classes; create one and tag items")
    train_index, labels = tag_matrix(project, items, classes)

    start = time.perf_counter()
    embeddings = embed_items(project, backbone, items, report_progress, cancel)
    timings["embedding"] = time.perf_counter() - start

    start = time.perf_counter()
    model, losses = train_on_tags(embeddings, train_index, labels, settings, backbone.device,
                                  report_progress, cancel)
    timings["training"] = time.perf_counter() - start

    round_id = project.rounds.start_round(METHOD, settings.to_dict())
    try:
        checkpoint = _save_checkpoint(project, model, round_id)
        start = time.perf_counter()
        positives = _label_items(project, backbone, model, items, embeddings, classes, settings,
                                 round_id, checkpoint, report_progress, cancel)
        timings["pseudo-labels"] = time.perf_counter() - start
    except BaseException:
        project.rounds.finish_round(round_id, "cancelled")
        raise
    project.rounds.finish_round(round_id, "done", checkpoint_id=checkpoint,
                                metrics={"seconds": timings, "losses": losses})
    return RunReport(round_id, len(items), positives, timings, losses)


def embed_items(project: Project, backbone: SamBackbone, items: list[Item],
                progress: ProgressCallback, cancel: threading.Event | None) -> list[Embedding]:
    """Embeddings of every item, from the cache (computing what is missing)."""
    cache = project.embedding_cache(backbone)
    steps = cache.fill(lambda i: project.item_image(items[i]), range(len(items)), cancel=cancel)
    for done, total in steps:
        progress(Progress("embedding", done, total))
    check_cancel(cancel)
    return [cache.embed(project.item_image(item)) for item in items]


def train_on_tags(embeddings: list[Embedding], train_index: list[int], labels: np.ndarray,
                  settings: WeakMedSamSettings, device: torch.device,
                  progress: ProgressCallback, cancel: threading.Event | None,
                  ) -> tuple[EmbeddingClassifier, list[float]]:
    """Sub-class targets by k-means, then the classifier, on the tagged items."""
    features = torch.stack([embeddings[i].features.half() for i in train_index])
    pooled = features.float().mean(dim=(2, 3)).numpy()
    children = subclass_targets(pooled, labels, settings.subclasses, settings.seed)
    training = ClassifierTraining(
        epochs=settings.epochs, batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, child_weight=settings.child_weight,
        min_steps=settings.min_steps, seed=settings.seed,
    )
    model = train_classifier(
        features, labels, children, training, device=device, cancel=cancel,
        on_epoch=lambda e, n, loss: progress(Progress("training", e, n, loss=loss)),
    )
    return model, training.losses


def label_item(backbone: SamBackbone, model: EmbeddingClassifier, embedding: Embedding,
               class_values: list[int], settings: WeakMedSamSettings) -> ItemResult:
    """CAM, affinity source map, random walk and label image for one item."""
    probabilities, cams = cam_at_item_size(backbone, model, embedding)
    present = probabilities >= settings.gate
    affinity = _affinity_map(backbone, embedding, settings) if present.any() else None
    refined = np.zeros_like(cams)
    masks = np.zeros(cams.shape, dtype=bool)
    for c in np.flatnonzero(present):
        refined[c] = refine_cam(cams[c], affinity, radius=settings.radius, beta=settings.beta,
                                steps=settings.steps)
        masks[c] = threshold_map(refined[c], float(probabilities[c]), settings.threshold,
                                 settings.gate)
    label = _label_image(masks, refined, class_values)
    confidence = _confidence(probabilities, refined, masks, settings.gate)
    return ItemResult(probabilities, cams, affinity, refined, label, confidence)


def cam_at_item_size(backbone: SamBackbone, model: EmbeddingClassifier,
                     embedding: Embedding) -> tuple[np.ndarray, np.ndarray]:
    """Presence probabilities (P,) and CAMs (P, H, W) in [0, 1] at the item's full size."""
    probabilities, raw = model.cam(embedding.features[None].float().to(backbone.device))
    valid = _valid_grid(embedding, raw.shape[-1], backbone.preprocessing.size)
    cams = normalise_cam(raw, valid)
    cams = backbone.to_item_frame(cams.float(), embedding)[0].cpu().numpy()
    return probabilities[0].cpu().numpy(), cams


def _affinity_map(backbone: SamBackbone, embedding: Embedding,
                  settings: WeakMedSamSettings) -> np.ndarray:
    height, width = embedding.original_shape
    if settings.prompts == "points":
        points = grid_points(height, width, grid=settings.grid)[:, None, :]
        decoded = backbone.decode(embedding, points=points,
                                  point_labels=np.ones(points.shape[:2], dtype=np.int64))
    else:
        boxes = grid_boxes(height, width, grid=settings.grid, scales=settings.box_scales)
        decoded = backbone.decode(embedding, boxes=boxes)
    probabilities = torch.sigmoid(decoded.logits[:, 0]).cpu().numpy()
    return affinity_source_map(probabilities)


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


def _confidence(probabilities: np.ndarray, refined: np.ndarray, masks: np.ndarray,
                gate: float) -> float:
    """Lowest per-class confidence: for a present class, its probability times the mean refined
    score inside its mask; for an absent class, one minus its probability."""
    scores = []
    for c, p in enumerate(probabilities):
        if p >= gate and masks[c].any():
            scores.append(float(p) * float(refined[c][masks[c]].mean()))
        elif p >= gate:
            scores.append(float(p) * 0.5)  # predicted present, but the walk left no pixels
        else:
            scores.append(1.0 - float(p))
    return min(scores) if scores else 0.0


def _label_items(project: Project, backbone: SamBackbone, model: EmbeddingClassifier,
                 items: list[Item], embeddings: list[Embedding], classes, settings,
                 round_id: int, checkpoint: int, progress: ProgressCallback,
                 cancel: threading.Event | None) -> int:
    values = [c.label_value for c in classes]
    params = settings.to_dict()
    positives = 0
    for index, (item, embedding) in enumerate(zip(items, embeddings, strict=True)):
        check_cancel(cancel)
        result = label_item(backbone, model, embedding, values, settings)
        positives += bool(result.label.any())
        project.labels.add_proposal(item.id, result.label, method=METHOD, round_id=round_id,
                                    checkpoint_id=checkpoint, params=params,
                                    confidence=result.confidence)
        if settings.save_maps:
            _save_maps(project, item, result, classes, round_id)
        progress(Progress("pseudo-labels", index + 1, len(items), item.name))
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


def _save_checkpoint(project: Project, model: EmbeddingClassifier, round_id: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "classifier.pt"
        torch.save(model.state_dict(), path)
        return project.rounds.add_checkpoint(path, round_id=round_id,
                                             description="WeakMedSAM classifier").id
