"""New images segmented by a finished round's models: no tags, no training.

A method that can predict registers a factory ``(project, backbone, round) -> predictor``; a
predictor has ``adapted()`` (a context in which the backbone carries what the round trained) and
``segment(project, items)`` (``(item, label image, confidence)`` per item). This module writes
the proposals as one new round that names the round whose models made them; :mod:`..cohort`
runs the same predictor on Dask workers and writes here too, in this one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..project import Item, Project, ProjectError
from ..project.importer import ImportReport, import_images
from ..project.rounds import Round
from .context import RunContext

if TYPE_CHECKING:
    from ..backbones.embedding_cache import EmbeddingCache


@dataclass
class PredictReport:
    """What a prediction did."""

    items: int
    from_round: int
    round_id: int
    seconds: float

    def summary(self) -> str:
        return (f"{self.items} new items segmented with the models of round {self.from_round} "
                f"in {self.seconds:.1f} s (round {self.round_id})")


def round_models(project: Project, checkpoint_id: int | None, round_: Round) -> dict:
    """A checkpoint of ``round_`` loaded (weights only); a ProjectError when the round saved
    none or its file is gone."""
    if checkpoint_id is None:
        raise ProjectError(f"round {round_.id} has no saved models (it stopped or failed before "
                           "saving them); choose a finished round with --round")
    path = project.rounds.checkpoint(checkpoint_id).path
    if not Path(path).is_file():
        raise ProjectError(f"{path}: the models of round {round_.id} are missing from the "
                           "project folder")
    return torch.load(path, map_location="cpu", weights_only=True)


def check_trained_on(round_: Round, model_id: str, weights_sha256: str, backbone) -> None:
    """A ProjectError unless ``backbone`` is the SAM model the round used."""
    if (model_id, weights_sha256) != (backbone.model_id, backbone.weights_sha256):
        raise ProjectError(
            f"round {round_.id} trained SAM {model_id} (weights {weights_sha256[:12]}), not "
            f"the {backbone.model_id} loaded now (weights {backbone.weights_sha256[:12]}); "
            "load that model with --model/--checkpoint")


def cached_embeddings(project: Project, backbone, items: list[Item], *,
                      sweep: bool = True) -> EmbeddingCache:
    """The project's embedding cache with every item of ``items`` in it (computed when
    missing); ``sweep`` as in :meth:`EmbeddingCache.fill` (off on a worker sharing it)."""
    cache = project.embedding_cache(backbone)
    for _ in cache.fill(lambda i: project.item_image(items[i]), range(len(items)),
                        sweep=sweep):
        pass
    return cache


def predict(context: RunContext, round_: Round, items: list[Item]) -> PredictReport:
    """Segment ``items`` in this process with ``round_``'s models."""
    from .registry import get_method

    start = time.perf_counter()
    predictor = get_method(round_.method).make_predictor(context.project, context.backbone,
                                                         round_)

    def results():
        with predictor.adapted():
            for done, (item, label, confidence) in enumerate(
                    predictor.segment(context.project, items), start=1):
                context.check_cancel()
                context.report("pseudo-labels", done, len(items), item.name)
                yield item.id, label, confidence
    round_id = record_round(context.project, round_, items, results())
    return PredictReport(len(items), round_.id, round_id, time.perf_counter() - start)


def record_round(project: Project, round_: Round, items: list[Item],
                 results: Iterable[tuple[int, np.ndarray, float]]) -> int:
    """A new round holding ``results`` (item id, label image, confidence) as proposals; a
    failure or Stop leaves it abandoned, with what was stored kept as history."""
    params = round_.params | {"stage": f"predict (round {round_.id})", "from_round": round_.id,
                              "items": [i.id for i in items]}
    round_id = project.rounds.start_round(round_.method, params)
    try:
        for item_id, label, confidence in results:
            project.labels.add_proposal(item_id, label, method=round_.method, round_id=round_id,
                                        checkpoint_id=round_.checkpoint_id, params=params,
                                        confidence=confidence)
        project.rounds.finish_round(round_id, "done", checkpoint_id=round_.checkpoint_id,
                                    metrics={"stage": "predict", "from_round": round_.id})
    except BaseException as error:
        project.rounds.abandon_round(round_id, error)
        raise
    return round_id


def choose_round(project: Project, round_id: int | None) -> Round:
    """The round asked for, or the latest finished one of a method that can predict."""
    from .registry import get_method, method_names

    rounds = project.rounds.rounds()
    if round_id is not None:
        found = next((r for r in rounds if r.id == round_id), None)
        if found is None:
            raise ProjectError(f"{project.root}: there is no round {round_id} "
                               "(`weaksam status` lists them)")
        if found.status != "done":
            raise ProjectError(f"round {round_id} is {found.status}, not finished; its models "
                               "are not complete")
        return found
    able = [r for r in rounds if r.status == "done" and r.method in method_names()
            and get_method(r.method).predictor is not None]
    if not able:
        raise ProjectError(f"{project.root}: no finished round of a method that segments new "
                           "images; run a method first")
    return able[-1]


def import_for_prediction(project: Project, inputs: list[Path], *, copy: bool = False,
                          tiling=None) -> tuple[list[Item], ImportReport]:
    """Import ``inputs``; the items of every file they name (new or already in the project),
    and the import's report. A ProjectError when none could be read."""
    report = import_images(project, inputs, copy=copy, tiling=tiling)
    paths = set(report.added) | set(report.already_present)
    sources = [s for s in project.catalog.sources() if s.path in paths]
    items = [item for s in sources for item in project.catalog.items(s.id)]
    if not items:
        where = ", ".join(str(p) for p in inputs)
        raise ProjectError(f"{where}: no image to segment was found or could be read")
    return items, report
