"""Event-loop stalls of the napari window while a method trains in the background.

Run from the repository root, under a display (``xvfb-run -a`` on a headless machine)::

    xvfb-run -a python benchmarks/bench_ui_stall.py

A real viewer opens the bundled sample project in the Tagging and Train docks and starts an
EP-SAM run (the same job a person starts with the Start button). A 10 ms timer probes the Qt
event loop: each tick records how late it fired. The script prints the median, 99th percentile
and maximum stall while the job runs, and how long Stop took to end it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

PROBE_MS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="probe this long, then press Stop")
    parser.add_argument("--classifier-epochs", type=int, default=8)
    args = parser.parse_args()

    import napari
    from qtpy.QtCore import QElapsedTimer, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_weaksam.jobs import MethodChoice
    from napari_weaksam.sample import make_sample_project
    from napari_weaksam.widgets.session import session_for
    from napari_weaksam.widgets.tagging import TaggingWidget
    from napari_weaksam.widgets.training import TrainingWidget

    root = make_sample_project(Path(tempfile.mkdtemp()) / "sample")
    viewer = napari.Viewer(show=True)
    tagging = TaggingWidget(viewer)
    training = TrainingWidget(viewer)
    viewer.window.add_dock_widget(tagging, name="Tagging")
    viewer.window.add_dock_widget(training, name="Train")
    tagging.open_project(root)
    training._load_choice(MethodChoice.of("epsam", epochs=args.classifier_epochs, rounds=2,
                                          decoder_epochs=2))

    stalls: list[float] = []
    stages: set[str] = set()
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(PROBE_MS)

    def tick() -> None:
        elapsed = clock.restart()
        stalls.append(max(0.0, elapsed - PROBE_MS))
        if training.job is not None and training.job.state.last is not None:
            stages.add(training.job.state.last.stage.split(":")[0])

    probe.timeout.connect(tick)
    stop_time = {}

    def finish() -> None:
        probe.stop()
        stop_time["asked"] = time.monotonic()
        training.stop()
        wait_for_end()

    def wait_for_end() -> None:
        if training.job is None:
            stop_time["ended"] = time.monotonic()
            QApplication.instance().quit()
        else:
            QTimer.singleShot(20, wait_for_end)

    training.start()
    clock.start()
    probe.start()
    QTimer.singleShot(int(args.seconds * 1000), finish)
    napari.run()
    stop_seconds = stop_time["ended"] - stop_time["asked"]
    values = np.asarray(stalls[1:])
    print(f"probed {len(values)} ticks over {args.seconds:.0f} s of training "
          f"(stages seen: {', '.join(sorted(stages))})")
    print(f"event-loop stall: p50 {np.percentile(values, 50):.1f} ms, "
          f"p99 {np.percentile(values, 99):.1f} ms, max {values.max():.1f} ms")
    print(f"Stop ended the job in {stop_seconds:.1f} s")
    project = session_for(viewer).project
    if project is not None:
        project.close()


if __name__ == "__main__":
    main()
