"""A small live loss curve for the Train dock (matplotlib in Qt)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


class LossPlot(FigureCanvasQTAgg):
    """Loss per epoch, one line per training stage (classifier, each decoder round) and per
    ensemble member ("classifier 1", "classifier 2": the job names them, see
    :meth:`~napari_weaksam.jobs.BackgroundJob.series_name`)."""

    def __init__(self) -> None:
        figure = Figure(figsize=(3.2, 1.8), layout="constrained")
        super().__init__(figure)
        self.axes = figure.add_subplot()
        self.series: dict[str, list[float]] = {}
        self.setMinimumHeight(150)
        self.clear()

    def clear(self) -> None:
        self.series = {}
        self._draw()

    def add(self, stage: str, loss: float) -> None:
        """One more epoch of the curve ``stage`` names (what comes before a ":")."""
        self.series.setdefault(stage.split(":")[0], []).append(loss)
        self._draw()

    def draw(self) -> None:
        """Draw, unless Qt has already deleted the widget (an idle redraw that was scheduled
        just before its dock closed)."""
        try:
            super().draw()
        except RuntimeError as error:
            if "has been deleted" not in str(error):
                raise

    def _draw(self) -> None:
        axes = self.axes
        axes.clear()
        for number, (stage, losses) in enumerate(self.series.items()):
            axes.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3,
                      color=COLORS[number % len(COLORS)], label=stage)
        axes.set_xlabel("epoch", fontsize=8)
        axes.set_ylabel("loss", fontsize=8)
        axes.tick_params(labelsize=7)
        if self.series:
            axes.legend(fontsize=7, frameon=False, ncols=min(3, len(self.series)))
        else:
            axes.text(0.5, 0.5, "loss appears here while training", ha="center", va="center",
                      fontsize=8, color="gray", transform=axes.transAxes)
        self.draw_idle()
