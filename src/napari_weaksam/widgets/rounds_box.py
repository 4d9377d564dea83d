"""The Train dock's Rounds box: the project's rounds, newest first (with each round's Dice once a
folder of reference masks is given), *Go back to round*, and the buttons that start work from the
selected round (its models on new images, a U-Net on its proposals), which the dock runs as jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from ..project import ProjectError
from ..project.restore import restore_round
from .qt_helpers import allow, make_button
from .session import ProjectSession

SELECT_ROUND = "Select a round in the list first."
ROUNDS_MIN_HEIGHT = 56   # three rounds
ROUNDS_MAX_HEIGHT = 96   # five: the dock's loss curve has the rest


class RoundsBox(QGroupBox):
    """The rounds of the session's project. ``say`` shows a line on the dock's status row;
    ``refusal()`` says why nothing may write the project now (None: it may); ``apply`` and
    ``train_network`` start the dock's jobs (new images' folder; nothing)."""

    def __init__(self, session: ProjectSession, say: Callable[[str], None],
                 refusal: Callable[[], str | None], apply: Callable[[list[Path]], None],
                 train_network: Callable[[], None]) -> None:
        super().__init__("Rounds")
        self.session = session
        self._say = say
        self._refusal = refusal
        self._apply = apply
        self.truth_dir: Path | None = None
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setMinimumHeight(ROUNDS_MIN_HEIGHT)
        self.list.setMaximumHeight(ROUNDS_MAX_HEIGHT)
        self.list.itemSelectionChanged.connect(self.refresh_buttons)
        layout.addWidget(self.list)
        self.restore_button = make_button(
            "Go back to round",
            "The selected round's proposals become the current ones again (nothing is deleted; "
            "reviews stay)", self.restore_selected)
        self.apply_button = make_button(
            "Apply to new images…",
            "The selected round's models (or the latest that can) segment a folder of new "
            "images: no tags, no training; they join the project with proposals to review",
            self._ask_apply)
        self.segnet_button = make_button(
            "U-Net on round",
            "A segmentation network (U-Net) learns from the selected round's proposals (or the "
            "latest round's), the tags and the reviewed masks (drawn often), then proposes for "
            "every image nobody reviewed: it learns more from reviews than Retrain's head, in a "
            "few minutes on a CPU; after it, Retrain continues its network in about a minute "
            "(weaksam segnet has its options)",
            train_network)
        row = QHBoxLayout()
        row.addWidget(self.restore_button)
        row.addWidget(self.apply_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.truth_label = QLabel("Truth: none")   # short: it shares its row with two buttons
        self.truth_label.setToolTip("The folder of reference masks (ground truth) the rounds' "
                                    "Dice is computed against")
        self.truth_label.setStyleSheet("color: gray;")
        row.addWidget(self.truth_label, 1)
        row.addWidget(self.segnet_button)   # beside the truth: no row of its own (dock height)
        row.addWidget(make_button("Masks…", "A folder of reference masks named like the images: "
                                  "Dice per round is shown (they are never used for training)",
                                  self._ask_truth))
        layout.addLayout(row)

    def selected_round(self) -> int | None:
        selected = self.list.selectedItems()
        return selected[0].data(Qt.ItemDataRole.UserRole) if selected else None

    def refresh(self) -> None:
        """List the project's rounds again (and their Dice, when a truth folder is set)."""
        self.list.clear()
        project = self.session.project
        if project is not None:
            dice = self._dice_per_round()
            for round_ in reversed(project.rounds.rounds()):
                stage = round_.params.get("stage")
                text = f"#{round_.id} · {round_.method}" + (f" · {stage}" if stage else "")
                text += f" · {round_.status}"
                if round_.id in dice:
                    text += f" · Dice {dice[round_.id]:.2f}"
                entry = QListWidgetItem(text)
                entry.setData(Qt.ItemDataRole.UserRole, round_.id)
                self.list.addItem(entry)
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        """Offer what may write the project now; going back only once a round is selected."""
        refusal = self._refusal()
        allow(self.apply_button, refusal)
        allow(self.segnet_button, refusal)
        allow(self.restore_button, refusal or (None if self.selected_round() is not None
                                               else SELECT_ROUND))

    def set_truth_dir(self, folder: Path | None) -> None:
        self.truth_dir = folder
        self.truth_label.setText(f"Truth: {folder.name}" if folder else "Truth: none")
        self.refresh()

    def restore_selected(self) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self._say(refusal)
            return
        round_id = self.selected_round()
        if round_id is None:
            show_info(SELECT_ROUND)
            return
        try:
            new = restore_round(self.session.project, round_id)
        except ProjectError as error:
            show_error(str(error))
            return
        self._say(f"Proposals of round #{round_id} are current again (round #{new}).")
        self.session.labels_changed.emit()

    def _ask_truth(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of reference masks")
        if folder:
            self.set_truth_dir(Path(folder))

    def _ask_apply(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of new images to segment")
        if folder:
            self._apply([Path(folder)])

    def _dice_per_round(self) -> dict[int, float]:
        project = self.session.project
        if self.truth_dir is None or project is None:
            return {}
        from ..evaluation import evaluate_rounds

        try:
            reports = evaluate_rounds(project, self.truth_dir)
        except (OSError, ValueError) as error:
            show_error(f"Ground truth: {error}")
            return {}
        return {r.id: report.summary()["dice_mean"] for r, report in reports}
