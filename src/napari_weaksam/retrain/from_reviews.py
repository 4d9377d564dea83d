"""Retrain: the masks people accepted or corrected teach where each class is, in about a minute.

What decides where SAM is asked to look is a mask head on the cached SAM embeddings
(:mod:`..cam.mask_head`), trained on everything the project knows about pixels at once: a
reviewed mask sets every cell of its item; an item tagged without a class sets every cell to
"not this class"; an unreviewed item tagged with a class only says that some of its cells have
it. For every item nobody reviewed, the head's map, thresholded, becomes SAM's prompts (one box
per component, and the map as SAM's mask prompt) and SAM's answer the new proposal. Reviewed
items are never touched. Optionally (``decoder_epochs``) SAM's prompt encoder and mask decoder
also train on the reviewed masks first, from the pretrained weights; the round keeps what they
learnt, and SAM is the pretrained one again when the round is done.

It is incremental: the embeddings come from the cache (the round it follows encoded them), and
the head continues the previous Retrain's head (fewer epochs) when one fits; no classifier is
trained again from scratch. Each Retrain is a round (method ``retrain``) that records the round
it follows, the head it continued, the reviewed items it learnt from and how long each stage
took. A method's full run stays available ("Retrain from scratch").
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones.embedding_grid import cells_to_item, mask_to_cells, valid_cell_mask
from ..backbones.sam import Embedding, SamBackbone
from ..cam.mask_head import MaskHead, head_config, presence_logits
from ..method_settings import DecoderTraining, ReviewRetrainSettings
from ..methods.context import RunContext
from ..methods.map_labels import label_from_maps
from ..methods.tag_presence import PRESENCE_RULE, tagged_presence
from ..methods.weakmedsam import embed_items
from ..project import ImageClass, Item, Project, ProjectError
from ..project.rounds import Round
from ..timing import timed
from ..training_loop import LoopSettings, oversample, train_loop
from ..training_plan import few_reviews_note
from .decoder_training import TrainingSample, train_decoder

METHOD = "retrain"
#: What a Retrain round records as its stage (the GUI test and the benchmark read it).
INCREMENTAL = "incremental"


@dataclass
class ReviewRetrainReport:
    round_id: int
    base_round: int | None
    reviewed: int
    proposals: int
    warm_start_round: int | None
    losses: list[float]
    seconds: dict[str, float]

    def summary(self) -> str:
        start = (f"continued round {self.warm_start_round}'s head"
                 if self.warm_start_round else "a new head")
        note = few_reviews_note(self.reviewed)
        return (f"round {self.round_id}: learnt from {self.reviewed} reviewed items ({start}), "
                f"new proposals for {self.proposals} unreviewed items in "
                f"{sum(self.seconds.values()):.1f} s" + (f"\n{note}" if note else ""))


@dataclass
class Supervision:
    """Per item (N) and class (P): what trains the head."""

    features: torch.Tensor      # (N, C, g, g) embeddings, float16
    valid: torch.Tensor         # (N, g, g) bool: cells that hold the image
    targets: torch.Tensor       # (N, P, g, g) share of each cell that is the class
    pixel_weight: torch.Tensor  # (N, P) 1: every cell's target is known (reviewed, tagged absent)
    present: torch.Tensor       # (N, P) 1: tagged present, not reviewed (some cells are)
    reviewed: torch.Tensor      # (N,) bool
    prior: torch.Tensor         # (N, P, g, g) the method's proposal, share of each cell per class
    trust: np.ndarray           # (P,) weight of the method's proposals as targets

    def pool(self, mask_share: float) -> torch.Tensor:
        """Item indices that train, reviewed ones repeated so they make about ``mask_share`` of
        what is drawn."""
        teaching = ((self.pixel_weight + self.present).sum(dim=1) > 0).nonzero()[:, 0]
        return oversample(teaching, self.reviewed.nonzero()[:, 0], mask_share)


def retrain_from_reviews(context: RunContext,
                         settings: ReviewRetrainSettings | None = None) -> ReviewRetrainReport:
    """One Retrain round on the context's project (see the module docstring)."""
    settings = settings or ReviewRetrainSettings()
    project, backbone = context.project, context.backbone
    base = base_round(project)
    items, classes = project.catalog.items(), project.catalog.classes()
    reviewed_masks = project.labels.reviewed_masks()
    if not any(item.id in reviewed_masks for item in items):
        raise ProjectError("nothing reviewed yet: accept or correct some proposals first (or "
                           "run a method from scratch)")
    seconds: dict[str, float] = {}
    with timed(seconds, "embeddings"):
        embeddings = embed_items(context, items)
    with timed(seconds, "training"):
        source = prior_round(project, base)
        proposals = method_proposals(project, source, items)
        data = supervision(project, items, classes, embeddings, backbone.preprocessing.size,
                           proposals, settings, reviewed_masks)
        head, warm = starting_head(project, base, classes, data, settings, backbone,
                                   set(reviewed_masks))
        losses = train_head(context, head, data, settings, warm is not None)

    method = method_round(project, source.id if source else None)
    sam_of = method_predictor(project, backbone, method) if asks_its_sam(method) else None
    params = settings.to_dict() | {
        "backbone": backbone.model_id, "weights_sha256": backbone.weights_sha256,
        "base_round": base.id if base else None, "warm_start_round": warm,
        "prior_round": source.id if source else None,
        "sam_round": method.id if sam_of is not None else None,
        "presence": PRESENCE_RULE,
        "reviewed_items": sorted(set(reviewed_masks) & {item.id for item in items}),
    }
    unreviewed = [(i, item) for i, item in enumerate(items) if item.id not in reviewed_masks]
    backbone.reset_trained()
    try:
        # SAM as the method round left it (a decoder it trained), so its answers stay its own
        with sam_of.adapted() if sam_of is not None else contextlib.nullcontext():
            decoder_losses: list[float] = []
            if settings.decoder_epochs:
                with timed(seconds, "decoder"):
                    decoder_losses = train_sam(context, items, embeddings, reviewed_masks,
                                               classes, settings)
            round_id = project.rounds.start_round(METHOD, params)
            try:
                checkpoint_id = save_head(project, head, backbone, round_id,
                                          sam_trained=bool(decoder_losses))
                with timed(seconds, "pseudo-labels"):
                    propose(context, head, embeddings, data, unreviewed, settings, round_id,
                            checkpoint_id, params)
                project.rounds.finish_round(round_id, "done", checkpoint_id=checkpoint_id,
                                            metrics={
                    "stage": INCREMENTAL, "base_round": params["base_round"],
                    "warm_start_round": warm, "reviewed_items": params["reviewed_items"],
                    "seconds": seconds, "losses": losses, "decoder_losses": decoder_losses,
                    "proposal_trust": [round(float(t), 4) for t in data.trust]})
            except BaseException as error:
                project.rounds.abandon_round(round_id, error)
                raise
    finally:
        backbone.reset_trained()
    return ReviewRetrainReport(round_id, params["base_round"], len(params["reviewed_items"]),
                               len(unreviewed), warm, losses, seconds)


def propose(context: RunContext, head: MaskHead, embeddings: list[Embedding],
            data: Supervision, unreviewed: list[tuple[int, Item]],
            settings: ReviewRetrainSettings, round_id: int, checkpoint_id: int,
            params: dict) -> None:
    """A new proposal for every unreviewed item (index in ``embeddings``, item)."""
    project, backbone = context.project, context.backbone
    classes, tags = project.catalog.classes(), project.catalog.all_tags()
    for done, (i, item) in enumerate(unreviewed, start=1):
        context.check_cancel()
        label, confidence = segment_item(backbone, head, embeddings[i],
                                         tagged_presence(item, tags, classes), classes,
                                         settings, data.prior[i])
        project.labels.add_proposal(item.id, label, method=METHOD, round_id=round_id,
                                    checkpoint_id=checkpoint_id, params=params,
                                    confidence=confidence)
        context.report("pseudo-labels", done, len(unreviewed), item.name)


def train_sam(context: RunContext, items: list[Item], embeddings: list[Embedding],
              reviewed: dict[int, tuple[object, np.ndarray]], classes: list[ImageClass],
              settings: ReviewRetrainSettings) -> list[float]:
    """SAM's prompt encoder and mask decoder trained in place on the reviewed masks (one sample
    per class present, prompted with a jittered box around each component), for
    ``settings.decoder_epochs`` passes; nothing when that is 0 or no mask has a class."""
    if settings.decoder_epochs == 0:
        return []
    samples = [TrainingSample(item.id, embedding, reviewed[item.id][1] == c.label_value,
                              origin="reviewed")
               for item, embedding in zip(items, embeddings, strict=True)
               if item.id in reviewed for c in classes
               if (reviewed[item.id][1] == c.label_value).any()]
    if not samples:
        return []
    # few masks: small batches, so that even five masks make a few optimiser steps per pass
    training = DecoderTraining(epochs=settings.decoder_epochs, batch_size=4, seed=settings.seed)

    def on_epoch(epoch: int, epochs: int, loss: float) -> None:
        context.report("SAM decoder", epoch, epochs, loss=loss)

    return train_decoder(context.backbone, samples, training, strategy="boxes",
                         on_epoch=on_epoch, cancel=context.cancel)


def base_round(project: Project) -> Round | None:
    """The latest finished round: what Retrain follows (None: masks drawn before any run).
    Rounds that only applied a model to new images (``from_round``) are not followed."""
    done = [r for r in project.rounds.rounds()
            if r.status == "done" and "from_round" not in r.params]
    return done[-1] if done else None


def prior_round(project: Project, base: Round | None) -> Round | None:
    """The method round whose proposals the head reads: ``base``, or for a Retrain the one it
    read (every Retrain in a row reads the same method's answers)."""
    if base is None or base.method != METHOD:
        return base
    known = {r.id: r for r in project.rounds.rounds()}
    return known.get(base.params.get("prior_round"))


def method_proposals(project: Project, round_: Round | None,
                     items: list[Item]) -> dict[int, np.ndarray]:
    """Item id → the label image ``round_`` proposed for it (items it did not label: none)."""
    if round_ is None:
        return {}
    wanted = {item.id for item in items}
    rows = project.db.rows("SELECT id, item_id FROM proposals WHERE round_id = ?", (round_.id,))
    return {row["item_id"]: project.labels.proposal_mask(project.labels.proposal(row["id"]))
            for row in rows if row["item_id"] in wanted}


# -- what trains the head ---------------------------------------------------------------------
def supervision(project: Project, items: list[Item], classes: list[ImageClass],
                embeddings: list[Embedding], model_size: int,
                proposals: dict[int, np.ndarray] | None = None,
                settings: ReviewRetrainSettings | None = None,
                reviewed: dict[int, tuple[object, np.ndarray]] | None = None) -> Supervision:
    """The head's training data from the reviewed masks (``reviewed``: read from the project
    when not given), the tags and ``proposals`` (item id → the label image of the method round
    Retrain follows), never anything else."""
    settings = settings or ReviewRetrainSettings()
    proposals = proposals or {}
    reviewed = project.labels.reviewed_masks() if reviewed is None else reviewed
    tags = project.catalog.all_tags()
    n, p = len(items), len(classes)
    grid = embeddings[0].features.shape[-2:]
    targets = torch.zeros((n, p, *grid))
    pixel_weight, present = torch.zeros((n, p)), torch.zeros((n, p))
    prior = torch.zeros((n, p, *grid))
    trust = np.full(p, settings.pseudo_weight)
    if settings.pseudo_trust == "reviews":
        trust = trust * method_agreement(proposals, reviewed, classes)
    for i, (item, embedding) in enumerate(zip(items, embeddings, strict=True)):
        if item.id in proposals:
            prior[i] = label_cells(proposals[item.id], classes, embedding, model_size)
        if item.id in reviewed:
            targets[i] = label_cells(reviewed[item.id][1], classes, embedding, model_size)
            pixel_weight[i] = 1
            continue
        tagged = tagged_presence(item, tags, classes)
        if tagged is None:
            continue
        present[i] = torch.from_numpy(tagged).float()
        pixel_weight[i] = torch.from_numpy(~tagged).float()   # absent: no cell has it
        for c in np.flatnonzero(tagged):                       # present: the method's answer
            if trust[c] > 0 and prior[i, c].sum() > 0:
                targets[i, c] = prior[i, c]
                pixel_weight[i, c] = float(trust[c])
    return Supervision(
        features=torch.stack([e.features.half() for e in embeddings]),
        valid=torch.stack([valid_cell_mask(e, model_size) for e in embeddings]),
        targets=targets, pixel_weight=pixel_weight, present=present,
        reviewed=torch.tensor([item.id in reviewed for item in items]), prior=prior,
        trust=trust)


def method_agreement(proposals: dict[int, np.ndarray],
                     reviewed: dict[int, tuple[object, np.ndarray]],
                     classes: list[ImageClass]) -> np.ndarray:
    """(P,) how far the method's answers can be trusted, from what people said of them: per
    class, the mean Dice between the method's proposal and the reviewed mask over the reviewed
    items where either has the class (1 where no reviewed item tells)."""
    agreement = np.ones(len(classes))
    for c, image_class in enumerate(classes):
        scores = []
        for item_id, (_state, mask) in reviewed.items():
            if item_id not in proposals:
                continue
            truth = mask == image_class.label_value
            said = proposals[item_id] == image_class.label_value
            if truth.any() or said.any():
                scores.append(2 * (truth & said).sum() / (truth.sum() + said.sum()))
        if scores:
            agreement[c] = float(np.mean(scores))
    return agreement


def no_prior(classes: list[ImageClass], embedding: Embedding) -> torch.Tensor:
    """(P, g, g) zeros: no method round to read (masks drawn before any run)."""
    return torch.zeros((len(classes), *embedding.features.shape[-2:]))


def label_cells(label: np.ndarray, classes: list[ImageClass], embedding: Embedding,
                model_size: int) -> torch.Tensor:
    """(P, g, g): the share of each cell a label image gives each class."""
    return torch.stack([mask_to_cells(label == c.label_value, embedding, model_size)
                        for c in classes])


def batch_loss(head: MaskHead, data: Supervision, index: torch.Tensor,
               presence_weight: float) -> torch.Tensor:
    """Pixel BCE where every cell is known, soft Dice on reviewed masks with the class, and
    the tag loss (top cells pooled → present) on unreviewed items tagged with it."""
    logits = head(data.features[index], data.prior[index])
    valid = data.valid[index]
    targets, weight, present = data.targets[index], data.pixel_weight[index], data.present[index]
    cells = valid[:, None].float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    per_map = (bce * cells).sum(dim=(2, 3)) / cells.sum(dim=(2, 3)).clamp(min=1)
    loss = (per_map * weight).sum() / weight.sum().clamp(min=1)
    has = ((targets.sum(dim=(2, 3)) > 0) & (weight > 0)).float() * weight
    if has.any():
        probability = torch.sigmoid(logits) * cells
        overlap = (probability * targets).sum(dim=(2, 3))
        total = probability.sum(dim=(2, 3)) + targets.sum(dim=(2, 3))
        dice_loss = 1 - (2 * overlap + 1) / (total + 1)
        loss = loss + (dice_loss * has).sum() / has.sum()
    if present.any() and presence_weight > 0:
        pooled = presence_logits(logits, valid)
        tag_loss = F.binary_cross_entropy_with_logits(pooled, torch.ones_like(pooled),
                                                      reduction="none")
        loss = loss + presence_weight * (tag_loss * present).sum() / present.sum()
    return loss


def starting_head(project: Project, base: Round | None, classes: list[ImageClass],
                  data: Supervision, settings: ReviewRetrainSettings,
                  backbone: SamBackbone, reviewed: set[int]) -> tuple[MaskHead, int | None]:
    """The head to train and the round it continues (None: a new head).

    The previous Retrain's head is continued when warm start is on, the round Retrain builds on
    (``base``) is that Retrain and may be continued (:func:`continued_models`: a method run
    from scratch, going back to a round or a withdrawn review start afresh), and it fits (same
    SAM model, same classes, same size); ``reviewed``: the items reviewed now."""
    torch.manual_seed(settings.seed)
    head = MaskHead(len(classes), data.features.shape[1], settings.hidden, settings.prior,
                    settings.depth)
    head.set_input_statistics(data.features[:: max(1, len(data.features) // 64)])
    saved = (continued_models(project, base, METHOD, reviewed) if settings.warm_start
             else None)
    fits = (saved is not None and saved["model_id"] == backbone.model_id
            and saved["config"] == head_config(head)
            and saved["class_ids"] == [c.id for c in classes])
    if not fits:
        return head, None
    head.load_state_dict(saved["state"])
    return head, base.id


def train_head(context: RunContext, head: MaskHead, data: Supervision,
               settings: ReviewRetrainSettings, warm: bool) -> list[float]:
    pool = data.pool(settings.mask_share)
    loop = LoopSettings(epochs=settings.warm_epochs if warm else settings.epochs,
                        batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                        weight_decay=settings.weight_decay, seed=settings.seed)

    def on_epoch(epoch: int, epochs: int, loss: float) -> None:
        context.report("mask head", epoch, epochs, loss=loss)

    head.train()
    losses = train_loop(head.parameters(), len(pool),
                        lambda index: batch_loss(head, data, pool[index],
                                                 settings.presence_weight),
                        loop, on_epoch=on_epoch, cancel=context.cancel)
    head.eval()
    return losses


# -- proposals ---------------------------------------------------------------------------------
def class_maps(head: MaskHead, embedding: Embedding, model_size: int,
               prior: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """Presence probabilities (P,) and per-class probability maps (P, H, W) in the item frame;
    ``prior``: the method's proposal on the grid (P, g, g), for a head that reads one."""
    valid = valid_cell_mask(embedding, model_size)
    with torch.inference_mode():
        logits = head(embedding.features[None], None if prior is None else prior[None])
        probabilities = torch.sigmoid(presence_logits(logits, valid[None]))[0]
        maps = cells_to_item(torch.sigmoid(logits[0]), embedding, model_size)
    return probabilities.numpy(), maps


def segment_item(backbone: SamBackbone, head: MaskHead, embedding: Embedding,
                 tagged: np.ndarray | None, classes: list[ImageClass],
                 settings: ReviewRetrainSettings,
                 prior: torch.Tensor | None = None) -> tuple[np.ndarray, float]:
    """One item's label image (per pixel the class with the highest head probability among
    those masked there) and its confidence (the lowest over its classes of the mean head
    probability inside the mask; for an item with no class, 1 − the highest presence
    probability, or 1 when tagged)."""
    probabilities, maps = class_maps(head, embedding, backbone.preprocessing.size, prior)
    return label_from_maps(probabilities, maps, tagged, classes, gate=settings.gate,
                           threshold=settings.threshold, prompts=settings.prompts,
                           backbone=backbone, embedding=embedding)


# -- the head on disk --------------------------------------------------------------------------
def save_head(project: Project, head: MaskHead, backbone: SamBackbone, round_id: int, *,
              sam_trained: bool = False) -> int:
    """The head (and, when Retrain trained SAM, what it trained) as the round's checkpoint."""
    saved = {"config": head_config(head), "state": head.state_dict(),
             "model_id": backbone.model_id, "weights_sha256": backbone.weights_sha256,
             "class_ids": [c.id for c in project.catalog.classes()]}
    if sam_trained:
        saved["sam"] = backbone.trained_state()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mask-head.pt"
        torch.save(saved, path)
        return project.rounds.add_checkpoint(path, round_id=round_id,
                                             description="retrain: mask head" +
                                             (" + SAM decoder" if sam_trained else "")).id


def continued_models(project: Project, follows: Round | None, method: str,
                     reviewed: set[int]) -> dict | None:
    """The saved models of ``follows`` when a new round of ``method`` may continue them: it is
    a round of that method whose models are still on disk, and every item it learnt from is
    still ``reviewed`` (a withdrawn review starts afresh); else None. Whether they fit is the
    caller's to check."""
    if follows is None or follows.method != method or follows.checkpoint_id is None \
            or not set(follows.params.get("reviewed_items", [])) <= reviewed:
        return None
    path = Path(project.rounds.checkpoint(follows.checkpoint_id).path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


# -- the method round a Retrain builds on -----------------------------------------------------
def method_round(project: Project, round_id: int | None) -> Round | None:
    """The method round behind ``round_id`` (for a *Go back to round* round, the round it
    brought back); None when there is none."""
    from ..project.restore import RESTORE_METHOD

    known = {r.id: r for r in project.rounds.rounds()}
    found = known.get(round_id) if round_id is not None else None
    while found is not None and found.method == RESTORE_METHOD:
        found = known.get(found.params.get("restored_round"))
    return found


def method_predictor(project: Project, backbone: SamBackbone, round_: Round | None):
    """The predictor of a method round (None for none)."""
    from ..methods.registry import get_method

    if round_ is None:
        return None
    return get_method(round_.method).make_predictor(project, backbone, round_)


def asks_its_sam(round_: Round | None) -> bool:
    """Whether Retrain asks the SAM a method round left (its trained decoder): yes unless the
    round adapted the image encoder (LoRA), whose embeddings are not the cached ones Retrain
    reads."""
    return round_ is not None and round_.params.get("scope", "decoder") == "decoder"
