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


def test_each_ensemble_member_starts_its_own_line_at_epoch_one(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    for series, loss in (("classifier 1", 0.9), ("classifier 1", 0.6), ("classifier 2", 0.8)):
        plot.add(series, loss)
    assert [list(line.get_xdata()) for line in plot.axes.lines] == [[1, 2], [1]]
    assert [line.get_label() for line in plot.axes.lines] == ["classifier 1", "classifier 2"]
