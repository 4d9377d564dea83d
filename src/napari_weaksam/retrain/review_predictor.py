"""A Retrain round segmenting new images: the method round's models first (for the head's
input, and the SAM it left when the round asked that one), then the round's head and SAM."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from ..backbones.sam import SamBackbone
from ..cam.mask_head import MaskHead
from ..method_settings import ReviewRetrainSettings
from ..project import Item, Project, ProjectError
from ..project.rounds import Round
from ..settings_fields import settings_from_params
from .from_reviews import (
    label_cells,
    method_predictor,
    method_round,
    no_prior,
    segment_item,
)


class ReviewRetrainPredictor:
    """A Retrain round's head and SAM, segmenting items that were never tagged; a head that
    reads a method's proposals gets them from that method round's own models first."""

    def __init__(self, project: Project, backbone: SamBackbone, round_: Round) -> None:
        from ..methods.prediction import check_trained_on, round_models

        saved = round_models(project, round_.checkpoint_id, round_)
        check_trained_on(round_, saved["model_id"], saved["weights_sha256"], backbone)
        self.classes = project.catalog.classes()
        if saved["class_ids"] != [c.id for c in self.classes]:
            raise ProjectError(f"round {round_.id} was trained on other classes than the "
                               "project has now; retrain")
        self.head = MaskHead(**saved["config"])
        self.head.load_state_dict(saved["state"])
        self.head.eval()
        self.settings = settings_from_params(ReviewRetrainSettings, round_.params)
        self.backbone = backbone
        self.sam_state = saved.get("sam")   # what the round trained of SAM, or None
        self.reads_prior = self.head.prior and round_.params.get("prior_round") is not None
        # the method round: its proposals are the head's input, its SAM answers the head
        asks = round_.params.get("sam_round") is not None and self.sam_state is None
        self.method = None
        if self.reads_prior or asks:
            method = method_round(project, round_.params.get("prior_round"))
            if method is None:
                raise ProjectError(f"round {round_.id} builds on a method round that is no "
                                   "longer in the project")
            self.method = method_predictor(project, backbone, method)
        self.sam_from_method = asks

    def adapted(self):
        # the prior's models adapt SAM apart (segment); this round's SAM is put in after them
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _own_sam(self) -> Iterator[None]:
        """SAM as the round asked it: what it trained, the method round's, or pretrained."""
        if self.sam_state is None:
            with self.method.adapted() if self.sam_from_method else contextlib.nullcontext():
                yield
            return
        try:
            self.backbone.load_trained_state(self.sam_state)
            yield
        finally:
            self.backbone.reset_trained()

    def segment(self, project: Project, items: list[Item], *, sweep: bool = True,
                ) -> Iterator[tuple[Item, np.ndarray, float]]:
        from ..methods.prediction import cached_embeddings

        labels: dict[int, np.ndarray] = {}
        if self.reads_prior:
            with self.method.adapted():
                labels = {item.id: label for item, label, _c in
                          self.method.segment(project, items, sweep=sweep)}
        cache = cached_embeddings(project, self.backbone, items, sweep=sweep)
        size = self.backbone.preprocessing.size
        with self._own_sam():
            for item in items:
                embedding = cache.embed(project.item_image(item))
                prior = (label_cells(labels[item.id], self.classes, embedding, size)
                         if self.reads_prior else no_prior(self.classes, embedding))
                label, confidence = segment_item(self.backbone, self.head, embedding, None,
                                                 self.classes, self.settings, prior)
                yield item, label, confidence
