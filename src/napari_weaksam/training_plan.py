"""What a method run will really do, read from its settings (no Qt, no torch).

- :func:`plan_text`: one or two lines saying what will train (step floors and ensembles
  included) and how many images get pseudo-labels, for the Train dock before Start;
- :func:`planned_stages`: the stages a run reports (:class:`~.progress.Progress` ``stage``), in
  order, so a job can say "stage k of n" and estimate the time left of the whole run;
- :class:`StageClock`: follows a run's reports through its planned stages.

The stage names are those the methods report; a report of a stage not planned here (e.g. an IDS
filter note) is shown under the current planned stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .method_settings import TAG_CLASSIFIER_TRUNKS, floored_epochs

if TYPE_CHECKING:
    from .method_settings import (
        DecoderTraining,
        EpSamSettings,
        ReviewRetrainSettings,
        SamMixSettings,
        SegNetSettings,
        WeakMedSamSettings,
    )
    from .progress import Progress
    from .project import Project

    MethodSettings = (EpSamSettings | WeakMedSamSettings | SamMixSettings
                      | ReviewRetrainSettings)

LOADING = "loading the model"   # reported by the job itself before the method starts
RETRAIN_EMBEDDING = "embedding: for Retrain"   # what a round did not read, encoded after it
SHOWN_AFTER_S = 2               # a time left this short is not worth a word
#: Below this many reviewed masks Retrain says the round may be worse than the one it follows:
#: in the review-loop benchmark (README) Retrain with 5 least-confident reviews lowered Dice on
#: the unreviewed images over every method's round on brain MR (−0.015 to −0.072 on the same
#: items), with 10 it raised it over WeakMedSAM's (+0.017), with 20 over every one.
FEW_REVIEWS = 10


def few_reviews_note(reviewed: int) -> str:
    """A line for a Retrain from fewer than :data:`FEW_REVIEWS` reviewed masks, else ''."""
    if reviewed >= FEW_REVIEWS:
        return ""
    return (f"Few masks: on brain MR in the benchmark, Retrain with 5 lowered Dice, with "
            f"{FEW_REVIEWS}–20 raised it. Review more first, or compare the rounds.")


@dataclass(frozen=True)
class PlannedStage:
    name: str                 # as the method reports it (``Progress.stage``)
    like: str | None = None   # an earlier stage that takes about as long (for the time left)
    members: int = 1          # classifiers trained one after the other within this stage
    series: str = ""          # the loss curve's name for it (default: the name before ":")

    def series_name(self, report: Progress) -> str:
        """The loss curve ``report`` belongs to: one per ensemble member."""
        base = self.series or self.name.split(":")[0]
        if self.members <= 1 or report.total <= 0:
            return base
        per_member = max(1, report.total // self.members)
        return f"{base} {min(self.members, (report.done - 1) // per_member + 1)}"


@dataclass(frozen=True)
class ProjectSize:
    items: int
    tagged: int
    reviewed: int = 0   # items whose mask a person accepted or corrected


def project_size(project: Project) -> ProjectSize:
    """How many items the run labels, how many tagged ones its classifier trains on and how
    many masks people accepted or corrected."""
    from .project import LabelState

    reviewed = sum(state in (LabelState.ACCEPTED, LabelState.CORRECTED)
                   for state in project.labels.states().values())
    return ProjectSize(project.catalog.count_items(), len(project.catalog.all_tags()), reviewed)


# -- stages ------------------------------------------------------------------------------------
def planned_stages(settings: MethodSettings) -> list[PlannedStage]:
    """The stages a run with ``settings`` reports, in order (the job's model loading first)."""
    from .methods.registry import method_of

    return [PlannedStage(LOADING), *method_of(settings).stages(settings)]


def weakmedsam_stages(settings: WeakMedSamSettings) -> list[PlannedStage]:
    later = [PlannedStage(RETRAIN_EMBEDDING)] if settings.cam_input == "image" else []
    return [PlannedStage("embedding"), *_weakmedsam_classifier(settings),
            PlannedStage("pseudo-labels"), *later]


def epsam_stages(settings: EpSamSettings) -> list[PlannedStage]:
    if settings.cam_source == "adl":
        classifier = [PlannedStage("classifier: images"), PlannedStage("classifier: training")]
    else:
        classifier = _weakmedsam_classifier(settings.embedding_classifier)
    return [PlannedStage("embedding"), *classifier, PlannedStage("initial masks"),
            *_decoder_stages(settings)]


def sammix_stages(settings: SamMixSettings) -> list[PlannedStage]:
    cached = [PlannedStage("embedding")] if settings.scope == "decoder" else []
    adapted = [] if cached else [PlannedStage("embedding")]
    return [*cached, PlannedStage("classifier: images"), PlannedStage("training"), *adapted,
            PlannedStage("pseudo-labels")]


def retrain_stages(settings: ReviewRetrainSettings) -> list[PlannedStage]:
    decoder = [PlannedStage("SAM decoder")] if settings.decoder_epochs else []
    return [PlannedStage("embedding"), PlannedStage("mask head"), *decoder,
            PlannedStage("pseudo-labels")]


def segnet_stages(settings: SegNetSettings) -> list[PlannedStage]:
    embedding = [PlannedStage("embedding")] if settings.prompts != "none" else []
    return [PlannedStage("images"), PlannedStage("segmentation network"), *embedding,
            PlannedStage("pseudo-labels")]


def _weakmedsam_classifier(settings: WeakMedSamSettings) -> list[PlannedStage]:
    images = [PlannedStage("training: images")] if settings.cam_input == "image" else []
    return [*images, PlannedStage("training", members=settings.ensemble, series="classifier")]


def _decoder_stages(settings: EpSamSettings) -> list[PlannedStage]:
    """The retraining engine's stages: optional zero-shot, preliminary, then the rounds."""
    first = "zero-shot" if settings.zero_shot else "preliminary"
    labels = f"{first}: pseudo-labels"
    stages = [PlannedStage(labels)] if settings.zero_shot else []
    stages += [PlannedStage("preliminary: training"),
               PlannedStage("preliminary: pseudo-labels", like=labels if settings.zero_shot
                            else None)]
    for number in range(1, settings.engine.rounds + 1):
        stages += [PlannedStage(f"round {number}: training", like="preliminary: training"),
                   PlannedStage(f"round {number}: pseudo-labels", like=labels)]
    return stages


# -- the summary before Start ------------------------------------------------------------------
def plan_text(settings: MethodSettings, size: ProjectSize | None) -> str:
    """What a run with ``settings`` trains and labels, in one or two short lines (``size``:
    the open project's, None without a project)."""
    from .methods.registry import method_of

    return method_of(settings).plan_text(settings, size)


def weakmedsam_plan(settings: WeakMedSamSettings, size: ProjectSize | None) -> str:
    tagged = None if size is None else size.tagged
    return f"{_weakmedsam_line(settings, tagged)}\nthen pseudo-labels for {_images(size)}"


def epsam_plan(settings: EpSamSettings, size: ProjectSize | None) -> str:
    tagged = None if size is None else size.tagged
    if settings.cam_source == "adl":
        classifier = (f"ADL classifier: {settings.classifier.epochs} epochs"
                      f"{_on_tagged(tagged)}")
    else:
        classifier = _weakmedsam_line(settings.embedding_classifier, tagged)
    return f"{classifier}\nthen {_decoder_line(settings, _images(size))}"


def sammix_plan(settings: SamMixSettings, size: ProjectSize | None) -> str:
    config = settings.classifier
    tagged = None if size is None else size.tagged
    epochs = (f"≥ {config.epochs}" if tagged is None else
              floored_epochs(config.epochs, config.min_steps, config.batch_size, tagged))
    classifier = (f"Tag classifier ({TAG_CLASSIFIER_TRUNKS[config.trunk]}): {epochs} epochs"
                  f"{_on_tagged(tagged)}")
    if size is not None and size.reviewed == 0:
        return (f"{classifier}; no reviewed masks yet, so SAM answers untrained\n"
                f"then pseudo-labels for {_images(size)}")
    sam = "SAM's decoder" if settings.scope == "decoder" else "SAM's decoder + LoRA adapters"
    masks = "your reviewed masks" if size is None else _count(size.reviewed, "reviewed mask")
    slow = (" (encodes every image again afterwards)" if settings.scope != "decoder" else "")
    return (f"{classifier}, with {sam} on {masks} × {settings.seg_epochs}{slow}\n"
            f"then pseudo-labels for {_images(size)}")


def retrain_plan(settings: ReviewRetrainSettings, size: ProjectSize | None) -> str:
    masks = "your reviewed masks" if size is None else _count(size.reviewed, "reviewed mask")
    unreviewed = ("the images nobody reviewed" if size is None
                  else _count(size.items - size.reviewed, "unreviewed image"))
    epochs = (f"{settings.warm_epochs} epochs when it continues the last Retrain's head, else "
              f"{settings.epochs}" if settings.warm_start else f"{settings.epochs} epochs")
    decoder = (f"; SAM's decoder trains on {masks} ({settings.decoder_epochs} epochs)"
               if settings.decoder_epochs else "")
    note = "" if size is None else few_reviews_note(size.reviewed)   # first: the dock elides
    return ((f"{note}\n" if note else "")
            + f"Retrain: a mask head on cached embeddings learns from {masks}, the tags and the "
            f"last round's proposals ({epochs}){decoder}\n"
            f"then new proposals for {unreviewed}; reviewed images stay as they are")


def segnet_plan(settings: SegNetSettings, size: ProjectSize | None) -> str:
    source = (f"round {settings.source_round}'s" if settings.source_round
              else "the last round's")
    unreviewed = ("the images nobody reviewed" if size is None
                  else _count(size.items - size.reviewed, "unreviewed image"))
    floor = f", ≥ {settings.min_steps} steps" if settings.min_steps else ""
    warm = (f"; {settings.warm_epochs} when it continues the last U-Net"
            if settings.warm_start else "")
    return (f"Segmentation network: a U-Net ({settings.size} px) learns from {source} "
            f"proposals, your reviewed masks and the tags "
            f"({_count(settings.epochs, 'epoch')}{floor}{warm})\n"
            f"then new proposals for {unreviewed}; reviewed images stay as they are")


def _images(size: ProjectSize | None) -> str:
    return "every image" if size is None else _count(size.items, "image")


def _weakmedsam_line(settings: WeakMedSamSettings, tagged: int | None) -> str:
    members = _count(settings.ensemble, "classifier")
    if tagged is None:
        return f"{members} × ≥ {settings.epochs} epochs (≥ {settings.min_steps} steps each)"
    epochs = floored_epochs(settings.epochs, settings.min_steps, settings.batch_size, tagged)
    floor = (f" ({settings.epochs} asked; ≥ {settings.min_steps} steps each)"
             if epochs > settings.epochs else "")
    return f"{members} × {epochs} epochs{_on_tagged(tagged)}{floor}"


def _decoder_line(settings: EpSamSettings, images: str) -> str:
    engine = settings.engine
    decoder: DecoderTraining = engine.decoder
    stages = "zero-shot, " if settings.zero_shot else ""
    if engine.rounds:
        stages += (f"preliminary + {_count(engine.rounds, 'round')} × {decoder.epochs} decoder "
                   "epochs")
    else:
        stages += f"preliminary only, {decoder.epochs} decoder epochs"
    floor = [f"≥ {decoder.min_steps} steps"] if decoder.min_steps else []
    if engine.rounds:
        floor.append("rounds ≥ the preliminary's steps")
    return f"{stages}, each labelling {images}" + (f" ({'; '.join(floor)})" if floor else "")


def _on_tagged(tagged: int | None) -> str:
    return "" if tagged is None else f" on {_count(tagged, 'tagged image')}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# -- following a run ---------------------------------------------------------------------------
@dataclass
class StageClock:
    """Follows a run's reports through its planned stages: where it is, and the time left."""

    plan: Sequence[PlannedStage] = ()
    started: dict[str, float] = field(default_factory=dict)   # when each stage began
    current: int | None = None                                # index into ``plan``
    unplanned: set[str] = field(default_factory=set)          # stages reported, not planned
    last_seen: float | None = None                            # the latest report's time

    def seen(self, report: Progress, now: float) -> None:
        """Note ``report``, received at ``now``: a stage begins with the previous one's last
        report (its own first report comes a step later)."""
        begun = self.last_seen if self.last_seen is not None else now
        self.started.setdefault(report.stage, begun)
        self.last_seen = now
        index = self._index(report.stage)
        if index is None:
            self.unplanned.add(report.stage)
        elif self.current is None or index > self.current:
            self.current = index

    def stage(self, report: Progress) -> PlannedStage:
        """The planned stage of ``report`` (an unplanned one stands for itself)."""
        index = self._index(report.stage)
        return self.plan[index] if index is not None else PlannedStage(report.stage)

    def position(self) -> tuple[int, int] | None:
        """(k, n): the run is in its k-th of n planned stages (1-based)."""
        return None if self.current is None else (self.current + 1, len(self.plan))

    def stage_seconds_left(self, report: Progress, now: float) -> float | None:
        """The current stage's time left, from its pace so far."""
        if report.done <= 0 or report.total <= 0:
            return None
        elapsed = now - self.started.get(report.stage, now)
        return elapsed / report.done * (report.total - report.done)

    def seconds_left(self, report: Progress, now: float) -> tuple[float, bool] | None:
        """The time left and whether it is the whole run's (else only the current stage's:
        a later stage has no earlier one to be timed by)."""
        left = self.stage_seconds_left(report, now)
        if left is None or self.current is None or self._index(report.stage) is None:
            return None
        later = [self._duration(stage.like) for stage in self.plan[self.current + 1:]]
        if any(seconds is None for seconds in later):
            return left, False
        return left + sum(s for s in later if s is not None), True

    def line(self, report: Progress, now: float) -> str:
        """"stage k of n · name · done/total · about T left (total)"."""
        position = self.position()
        parts = [f"stage {position[0]} of {position[1]}"] if position else []
        parts += [report.stage, f"{report.done}/{report.total}"]
        left = self.seconds_left(report, now)
        if left is not None and left[0] > SHOWN_AFTER_S:
            parts.append(f"about {duration(left[0])} left"
                         + (" (total)" if left[1] else " in this stage"))
        return " · ".join(parts)

    def _index(self, name: str) -> int | None:
        return next((i for i, stage in enumerate(self.plan) if stage.name == name), None)

    def _duration(self, name: str | None) -> float | None:
        """How long the finished stage ``name`` took (None: not finished, or no such stage)."""
        index = None if name is None else self._index(name)
        if index is None or name not in self.started:
            return None
        ends = [self.started[s.name] for s in self.plan[index + 1:] if s.name in self.started]
        return ends[0] - self.started[name] if ends else None


def duration(seconds: float) -> str:
    """"40 s", "3 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"

