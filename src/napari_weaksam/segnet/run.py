"""A segmentation network trained on a finished round's pseudo-labels and the reviewed masks,
writing its own round of proposals for every item nobody reviewed (see :mod:`.training` for
what trains it and :mod:`.predictor` for how it segments)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..backbones.precision import training_autocast
from ..backbones.sam import PRECISIONS_BY_DTYPE, Embedding
from ..method_settings import SegNetSettings
from ..methods.context import RunContext
from ..methods.tag_presence import PRESENCE_RULE, tagged_presence
from ..methods.weakmedsam import embed_items
from ..project import Item, Project, ProjectError
from ..project.rounds import Round
from ..retrain.from_reviews import base_round, continued_models, method_proposals
from ..timing import timed
from ..training_loop import LoopSettings, oversample, train_loop
from .network import build_network, network_config, network_input
from .predictor import segment_image
from .training import DIHEDRAL, SegNetData, batch_loss, class_targets, target_weights

METHOD = "segnet"


@dataclass
class SegNetReport:
    round_id: int
    source_round: int
    trained_on: int
    proposals: int
    losses: list[float]
    seconds: dict[str, float]
    warm_start_round: int | None = None

    def summary(self) -> str:
        network = (f"round {self.warm_start_round}'s network, continued,"
                   if self.warm_start_round else "a segmentation network")
        return (f"round {self.round_id}: {network} learnt from {self.trained_on} "
                f"items (round {self.source_round}'s pseudo-labels and the reviewed masks), new "
                f"proposals for {self.proposals} unreviewed items in "
                f"{sum(self.seconds.values()):.1f} s")


def run_segnet(context: RunContext, settings: SegNetSettings | None = None) -> SegNetReport:
    """Train the network and propose (see the module docstring)."""
    settings = settings or SegNetSettings()
    project = context.project
    source = source_round(project, settings.source_round)
    items, classes = project.catalog.items(), project.catalog.classes()
    reviewed = project.labels.reviewed_masks()
    seconds: dict[str, float] = {}
    with timed(seconds, "images"):
        data = training_data(context, items, source, reviewed, settings)
    teaching = data.teaching()
    if len(teaching) == 0:
        raise ProjectError(f"round {source.id} gives the network nothing to learn: no item has "
                           "a pseudo-label, a reviewed mask or a tag")
    marked = torch.tensor([item.id in reviewed for item in items])
    drawn = oversample(teaching, marked.nonzero()[:, 0], settings.mask_share)
    network, warm = starting_network(project, source, set(reviewed), settings)
    network = network.to(context.backbone.device)
    with timed(seconds, "training"):
        losses = train_network(context, network, data, drawn, settings, warm is not None)
    unreviewed = [item for item in items if item.id not in reviewed]
    tags = project.catalog.all_tags()
    with timed(seconds, "embeddings"):
        embeddings = sam_embeddings(context, unreviewed, tags, settings)
    backbone = context.backbone
    params = settings.to_dict() | {
        "backbone": backbone.model_id, "weights_sha256": backbone.weights_sha256,
        "source_round": source.id, "warm_start_round": warm, "presence": PRESENCE_RULE,
        "reviewed_items": sorted(set(reviewed) & {item.id for item in items})}
    round_id = project.rounds.start_round(METHOD, params)
    try:
        checkpoint_id = save_network(project, network, settings, round_id)
        with timed(seconds, "pseudo-labels"):
            for done, (item, embedding) in enumerate(zip(unreviewed, embeddings, strict=True),
                                                     start=1):
                context.check_cancel()
                label, confidence = segment_image(
                    network, project.item_image(item), settings.size,
                    tagged_presence(item, tags, classes), classes, settings, backbone,
                    embedding)
                project.labels.add_proposal(item.id, label, method=METHOD, round_id=round_id,
                                            checkpoint_id=checkpoint_id, params=params,
                                            confidence=confidence)
                context.report("pseudo-labels", done, len(unreviewed), item.name)
        project.rounds.finish_round(round_id, "done", checkpoint_id=checkpoint_id, metrics={
            "stage": "segmentation network", "source_round": source.id,
            "warm_start_round": warm,
            "precision": PRECISIONS_BY_DTYPE[training_autocast(context.backbone)],
            "trained_on": len(teaching), "reviewed_items": params["reviewed_items"],
            "seconds": seconds, "losses": losses})
    except BaseException as error:
        project.rounds.abandon_round(round_id, error)
        raise
    return SegNetReport(round_id, source.id, len(teaching), len(unreviewed), losses, seconds,
                        warm)


def sam_embeddings(context: RunContext, items: list[Item], tags: dict[int, set[int]],
                   settings: SegNetSettings) -> list[Embedding | None]:
    """Per item, the embedding SAM answers the network's boxes on: none when SAM is not asked
    (prompts "none") or the item is tagged with no class (it stays empty)."""
    embeddings: list[Embedding | None] = [None] * len(items)
    if settings.prompts == "none":
        return embeddings
    classes = context.project.catalog.classes()
    asked = [i for i, item in enumerate(items)
             if (tagged := tagged_presence(item, tags, classes)) is None or tagged.any()]
    found = embed_items(context, [items[i] for i in asked]) if asked else []
    for i, embedding in zip(asked, found, strict=True):
        embeddings[i] = embedding
    return embeddings


def source_round(project: Project, round_id: int) -> Round:
    """The round whose proposals train the network: ``round_id``, or with 0 the latest finished
    round of another method that was not only applied to new images."""
    rounds = project.rounds.rounds()
    if round_id:
        found = next((r for r in rounds if r.id == round_id), None)
        if found is None or found.status != "done":
            raise ProjectError(f"{project.root}: there is no finished round {round_id} "
                               "(`weaksam status` lists them)")
        return found
    done = [r for r in rounds if r.status == "done" and r.method != METHOD
            and "from_round" not in r.params]
    if not done:
        raise ProjectError(f"{project.root}: no finished round to learn from; run a method "
                           "first (weaksam run)")
    return done[-1]


def starting_network(project: Project, source: Round, reviewed: set[int],
                     settings: SegNetSettings) -> tuple[torch.nn.Module, int | None]:
    """The network to train and the round it continues (None: a new network).

    The network of the round this one follows (the latest finished round) is continued when
    warm start is on, that round is a U-Net that learnt from ``source``'s proposals and may be
    continued (:func:`~..retrain.from_reviews.continued_models`: a method run again, a round
    gone back to, a review withdrawn start afresh), and it fits (same classes, size and
    widths)."""
    classes = project.catalog.classes()
    torch.manual_seed(settings.seed)
    network = build_network(len(classes), settings.features)
    follows = base_round(project)
    saved = (continued_models(project, follows, METHOD, reviewed)
             if settings.warm_start and follows is not None
             and follows.params.get("source_round") == source.id else None)
    fits = (saved is not None
            and saved["config"] == network_config(len(classes), settings.size,
                                                  settings.features)
            and saved["class_ids"] == [c.id for c in classes])
    if not fits:
        return network, None
    network.load_state_dict(saved["state"])
    return network, follows.id


def training_data(context: RunContext, items: list[Item], source: Round,
                  reviewed: dict[int, tuple[object, np.ndarray]],
                  settings: SegNetSettings) -> SegNetData:
    """Images, targets and weights of every item (see :mod:`.training`)."""
    project = context.project
    classes, tags = project.catalog.classes(), project.catalog.all_tags()
    proposals = method_proposals(project, source, items)
    confidence = proposal_confidences(project, source)
    size, n = settings.size, len(items)
    inputs = torch.zeros((n, 3, size, size), dtype=torch.float16)
    targets = torch.zeros((n, len(classes), size, size), dtype=torch.float16)
    weight = torch.zeros((n, len(classes)))
    for i, item in enumerate(items):
        context.check_cancel()
        inputs[i] = network_input(project.item_image(item), size).half()
        if item.id in reviewed:
            targets[i] = class_targets(reviewed[item.id][1], classes, size).half()
            weight[i] = 1.0
        else:
            proposal = proposals.get(item.id)
            if proposal is not None:
                targets[i] = class_targets(proposal, classes, size).half()
            weight[i] = torch.from_numpy(target_weights(
                item, tags, classes, proposal, confidence.get(item.id), settings)).float()
        context.report("images", i + 1, n, item.name)
    return SegNetData(inputs, targets, weight)


def proposal_confidences(project: Project, round_: Round) -> dict[int, float | None]:
    """Item id → the confidence ``round_`` gave its proposal."""
    rows = project.db.rows("SELECT item_id, confidence FROM proposals WHERE round_id = ?",
                           (round_.id,))
    return {row["item_id"]: row["confidence"] for row in rows}


def train_network(context: RunContext, network: torch.nn.Module, data: SegNetData,
                  teaching: torch.Tensor, settings: SegNetSettings,
                  warm: bool = False) -> list[float]:
    """The network trained on the items ``teaching`` indexes, each drawn flipped/turned at
    random; the mean loss of each epoch (``warm``: a continued network, ``warm_epochs`` and no
    step floor)."""
    generator = torch.Generator().manual_seed(settings.seed)
    loop = LoopSettings(epochs=settings.warm_epochs if warm else settings.epochs,
                        batch_size=settings.batch_size,
                        learning_rate=settings.learning_rate,
                        weight_decay=settings.weight_decay,
                        min_steps=0 if warm else settings.min_steps, seed=settings.seed)

    autocast = training_autocast(context.backbone)

    def loss(index: torch.Tensor) -> torch.Tensor:
        turns = torch.randint(DIHEDRAL, (len(index),), generator=generator)
        return batch_loss(network, data, teaching[index], turns, autocast)

    def on_epoch(epoch: int, epochs: int, value: float) -> None:
        context.report("segmentation network", epoch, epochs, loss=value)

    network.train()
    losses = train_loop(network.parameters(), len(teaching), loss, loop, generator=generator,
                        on_epoch=on_epoch, cancel=context.cancel)
    network.eval()
    return losses


def save_network(project: Project, network: torch.nn.Module, settings: SegNetSettings,
                 round_id: int) -> int:
    """The network (and what rebuilds it) as the round's checkpoint."""
    saved = {"config": network_config(len(project.catalog.classes()), settings.size,
                                              settings.features),
                     "state": network.state_dict(),
                     "class_ids": [c.id for c in project.catalog.classes()]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "segmentation-network.pt"
        torch.save(saved, path)
        return project.rounds.add_checkpoint(path, round_id=round_id,
                                             description="segmentation network (U-Net)").id
