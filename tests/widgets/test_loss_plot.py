"""The Train dock's loss curve."""

from __future__ import annotations

from napari_weaksam.widgets.loss_plot import LossPlot


def test_one_line_per_stage(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    for stage, loss in (("classifier", 0.9), ("classifier", 0.5), ("round 1: decoder", 0.3)):
        plot.add(stage, loss)
    assert plot.series == {"classifier": [0.9, 0.5], "round 1": [0.3]}
    assert len(plot.axes.lines) == 2
