"""Score a project's proposals (or final labels) against reference masks.

Ground truth is used ONLY here, for evaluation: the weak pipeline never reads it.

Masks live in one folder, named like the images (``x.png`` → ``masks/x.png``; the same stem with
another supported suffix also matches). A volume's mask is a volume read by the same reader, so
an item's ``display_index`` selects its slice in both.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io import ImageData, read_image
from .io.readers import is_supported, split_suffix
from .metrics import dice, hd95, iou
from .project import Item, Project, Source
from .project.labels import CURRENT

PREDICTION_SOURCES = ("proposals", "final")
CSV_FIELDS = (
    "item", "item_id", "source_file", "slice_index", "positive", "dice", "iou", "hd95",
    "predicted_pixels", "truth_pixels", "area_fraction", "method", "round",
)


# -- ground truth ------------------------------------------------------------------------------
def find_truth(project: Project, masks_dir: str | Path, *,
               label: int | None = None) -> dict[int, np.ndarray]:
    """Ground truth (bool 2D) per item id; items without a mask file are left out.

    ``label`` picks one value of a label mask; by default every value above zero counts.
    """
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise FileNotFoundError(f"{masks_dir}: no such folder of ground-truth masks")
    truth: dict[int, np.ndarray] = {}
    for source in project.catalog.sources():
        mask_path = mask_file(masks_dir, Path(source.path).name)
        if mask_path is None:
            continue
        if _same_file(mask_path, Path(source.path)):
            raise ValueError(f"{mask_path}: this mask is itself an image of the project, so "
                             "it would be scored against itself; remove the masks from the "
                             "project (they were imported as images) or give another folder")
        truth.update(_source_truth(project, source, mask_path, label))
    return truth


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def mask_file(masks_dir: Path, image_name: str) -> Path | None:
    """The mask of ``image_name``: the same file name, else the same stem, else None."""
    exact = masks_dir / image_name
    if exact.exists():
        return exact
    stem = split_suffix(image_name)[0]
    found = sorted(p for p in masks_dir.iterdir() if is_supported(p) and split_suffix(p)[0] == stem)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ValueError(f"{image_name}: several masks match ({names}); keep only one")
    return found[0] if found else None


def _source_truth(project: Project, source: Source, mask_path: Path,
                  label: int | None) -> dict[int, np.ndarray]:
    mask = read_image(mask_path)
    items = project.catalog.items(source.id)
    _check_geometry(mask, source, items, mask_path)
    return {
        item.id: _binary(_grey(mask.slice(item.display_index), mask, mask_path), label)
        for item in items
    }


def _check_geometry(mask: ImageData, source: Source, items: list[Item], mask_path: Path) -> None:
    is_volume = source.kind == "volume"
    plane = _plane_shape(mask)
    ok = mask.is_volume == is_volume and all(plane == (i.height, i.width) for i in items)
    if is_volume:
        ok = ok and mask.n_slices == source.shape[source.axes.index("Z")]
    if not ok:
        raise ValueError(
            f"mask {mask_path} (shape {mask.shape}) does not match image "
            f"{source.path} (shape {tuple(source.shape)})"
        )


def _plane_shape(image: ImageData) -> tuple[int, int]:
    return image.shape[image.axes.index("Y")], image.shape[image.axes.index("X")]


def _grey(plane: np.ndarray, mask: ImageData, mask_path: Path) -> np.ndarray:
    """A single-channel plane; an RGB(A) mask counts only when its colour channels agree."""
    if "C" not in mask.axes:
        return plane
    channels = np.moveaxis(plane, 0, -1) if mask.axes.startswith("C") else plane
    colour = channels[..., :3]
    if not (colour == colour[..., :1]).all():
        raise ValueError(f"{mask_path}: a mask must be a grey label image, not a colour image")
    return colour[..., 0]


def _binary(labels: np.ndarray, label: int | None) -> np.ndarray:
    return np.asarray(labels > 0 if label is None else labels == label, dtype=bool)


# -- predictions -------------------------------------------------------------------------------
def _proposal_rows(project: Project, round_id: int | None) -> dict[int, Any]:
    """The latest proposal row per item (of ``round_id`` when given)."""
    if round_id is None:
        rows = project.db.rows(f"SELECT * FROM proposals WHERE {CURRENT} ORDER BY id")
    else:
        rows = project.db.rows("SELECT * FROM proposals WHERE round_id = ? ORDER BY id",
                               (round_id,))
        if not rows:
            raise ValueError(f"round {round_id} has no proposals")
    return {row["item_id"]: row for row in rows}


def _predictions(project: Project, source: str,
                 round_id: int | None) -> dict[int, tuple[np.ndarray, str, int | None]]:
    """``item id → (label mask, method, round)`` for the items that have a prediction."""
    if source not in PREDICTION_SOURCES:
        raise ValueError(f"source must be one of {PREDICTION_SOURCES}, not {source!r}")
    if source == "final":
        if round_id is not None:
            raise ValueError("round_id selects proposals; it cannot be used with source='final'")
        return _final_predictions(project)
    return {
        item_id: (project.arrays.read(row["array_key"]), row["method"], row["round_id"])
        for item_id, row in _proposal_rows(project, round_id).items()
    }


def _final_predictions(project: Project) -> dict[int, tuple[np.ndarray, str, int | None]]:
    rows = project.db.rows(
        "SELECT r.item_id, r.state, p.round_id FROM reviews r"
        " LEFT JOIN proposals p ON p.id = r.proposal_id"
    )
    found = {}
    for row in rows:
        mask = project.labels.final_mask(row["item_id"])
        if mask is not None:
            found[row["item_id"]] = (mask, row["state"], row["round_id"])
    return found


# -- scoring -----------------------------------------------------------------------------------
def evaluate_project(project: Project, masks_dir: str | Path, *, source: str = "proposals",
                     round_id: int | None = None, label: int | None = None,
                     truth_label: int | None = None) -> EvaluationReport:
    """Dice, IoU and HD95 of every item that has both ground truth and a prediction.

    ``source`` is ``"proposals"`` (the latest, or those of ``round_id``) or ``"final"`` (the
    reviewed labels). ``label`` / ``truth_label`` pick one class value in the predictions /
    the masks (default: any value above zero). HD95 is in the units of the source's spacing.
    """
    truth = find_truth(project, masks_dir, label=truth_label)
    return score_predictions(project, truth, source=source, round_id=round_id, label=label)


def score_predictions(project: Project, truth: dict[int, np.ndarray], *,
                      source: str = "proposals", round_id: int | None = None,
                      label: int | None = None) -> EvaluationReport:
    """Like :func:`evaluate_project`, with the ground truth already read (see ``find_truth``)."""
    predictions = _predictions(project, source, round_id)
    items = {item.id: item for item in project.catalog.items()}
    sources = {src.id: src for src in project.catalog.sources()}
    report = EvaluationReport(source=source, round_id=round_id)
    for item_id, truth_mask in truth.items():
        item = items[item_id]
        if item_id not in predictions:
            report.missing.append(item.name)
            continue
        mask, method, round_ = predictions[item_id]
        pred = _binary(np.asarray(mask), label)
        row = _score_row(item, sources[item.source_id], pred, truth_mask)
        report.rows.append(row | {"method": method, "round": round_})
    return report


def evaluate_rounds(project: Project, masks_dir: str | Path, *,
                    truth_label: int | None = None) -> list[tuple[Any, EvaluationReport]]:
    """One report per finished round that has proposals, oldest first (ground truth read once)."""
    truth = find_truth(project, masks_dir, label=truth_label)
    with_proposals = {r[0] for r in project.db.rows("SELECT DISTINCT round_id FROM proposals")}
    return [
        (round_, score_predictions(project, truth, round_id=round_.id))
        for round_ in project.rounds.rounds()
        if round_.id in with_proposals and round_.status == "done"
    ]


def rounds_table(reports: list[tuple[Any, EvaluationReport]]) -> str:
    """A markdown table: one row per round (method, stage, Dice on positives, FP rate)."""
    lines = ["| round | method | stage | positives | Dice mean | Dice median | FP rate |",
             "|---|---|---|---|---|---|---|"]
    for round_, report in reports:
        s = report.summary()
        stage = round_.params.get("stage", "")
        lines.append(f"| {round_.id} | {round_.method} | {stage} | {s['n_positive']} | "
                     f"{_fmt(s['dice_mean'])} | {_fmt(s['dice_median'])} | "
                     f"{_fmt(s['fp_rate'])} |")
    return "\n".join(lines)


def _score_row(item: Item, source: Source, pred: np.ndarray,
               truth: np.ndarray) -> dict[str, Any]:
    return {
        "item": item.name,
        "item_id": item.id,
        "source_file": Path(source.path).name,
        "slice_index": item.slice_index,
        "positive": bool(truth.any()),
        "dice": dice(pred, truth),
        "iou": iou(pred, truth),
        "hd95": hd95(pred, truth, source.spacing[-2:]),
        "predicted_pixels": int(np.count_nonzero(pred)),
        "truth_pixels": int(np.count_nonzero(truth)),
        "area_fraction": float(np.count_nonzero(pred) / pred.size),
    }


def _finite(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _mean(values: list[float]) -> float:
    finite = _finite(values)
    return float(finite.mean()) if finite.size else math.nan


def _median(values: list[float]) -> float:
    finite = _finite(values)
    return float(np.median(finite)) if finite.size else math.nan


def _sd(values: list[float]) -> float:
    finite = _finite(values)
    return float(finite.std(ddof=1)) if finite.size > 1 else math.nan


@dataclass
class EvaluationReport:
    """Per-item scores; positive items have foreground in the truth, negative items none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    source: str = "proposals"
    round_id: int | None = None

    @property
    def positive(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["positive"]]

    @property
    def negative(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["positive"]]

    def summary(self) -> dict[str, Any]:
        """Means and medians over positive items, false positives over negative ones."""
        pos, neg = self.positive, self.negative
        dices = [r["dice"] for r in pos]
        hd = [r["hd95"] for r in pos]
        return {
            "source": self.source, "round_id": self.round_id,
            "n_positive": len(pos), "dice_mean": _mean(dices), "dice_sd": _sd(dices),
            "dice_median": _median(dices), "iou_mean": _mean([r["iou"] for r in pos]),
            "iou_median": _median([r["iou"] for r in pos]), "hd95_mean": _mean(hd),
            "hd95_median": _median(hd), "n_hd95": int(_finite(hd).size),
            "n_negative": len(neg),
            "fp_rate": _mean([float(r["predicted_pixels"] > 0) for r in neg]),
            "fp_area_mean": _mean([r["area_fraction"] for r in neg]),
            "n_missing": len(self.missing),
        }

    def table(self) -> str:
        """The summary as a markdown table."""
        s = self.summary()
        lines = [
            ("positive items", str(s["n_positive"])),
            ("Dice mean ± sd", f"{_fmt(s['dice_mean'])} ± {_fmt(s['dice_sd'])}"),
            ("Dice median", _fmt(s["dice_median"])),
            ("IoU mean", _fmt(s["iou_mean"])),
            ("HD95 median (spacing units)", f"{_fmt(s['hd95_median'], 2)} (n={s['n_hd95']})"),
            ("negative items", str(s["n_negative"])),
            ("false-positive rate", _fmt(s["fp_rate"])),
            ("mean predicted area (negatives)", _fmt(s["fp_area_mean"], 4)),
            ("missing (no prediction)", str(s["n_missing"])),
        ]
        head = f"| metric ({self._what()}) | value |\n|---|---|\n"
        return head + "\n".join(f"| {name} | {value} |" for name, value in lines)

    def _what(self) -> str:
        return self.source if self.round_id is None else f"{self.source}, round {self.round_id}"

    def write_csv(self, path: str | Path) -> Path:
        """One row per scored item (NaN and None written as empty cells)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in row.items()} for row in self.rows)
        return path

    def plot(self, path: str | Path) -> Path:
        """A PNG: Dice histogram of positive items, false-positive rate of negative items."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        s = self.summary()
        figure = Figure(figsize=(8, 3.2), layout="constrained")
        FigureCanvasAgg(figure)
        left, right = figure.subplots(1, 2, width_ratios=(3, 1))
        left.hist([r["dice"] for r in self.positive], bins=20, range=(0, 1), color="#0072B2")
        left.set(xlabel="Dice", ylabel="items", title=f"positive items (n={s['n_positive']})")
        fp = 0.0 if math.isnan(s["fp_rate"]) else s["fp_rate"]
        right.bar(["negatives"], [fp], color="#D55E00")
        right.set(ylim=(0, 1), ylabel="false-positive rate", title=f"n={s['n_negative']}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
        return path


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value
