"""Progress bars on the terminal (tqdm): one bar per stage, with its rate and time left.

When the output is not a terminal (a log file, a cluster job), each stage prints one line when it
starts and one when it ends, with its rate, instead of a bar.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from .progress import Progress


class StageBars:
    """A :data:`~.progress.ProgressCallback` that draws a tqdm bar for each stage in turn."""

    def __init__(self, unit: str = "it", *, disable: bool | None = None) -> None:
        self.unit = unit
        self.disable = disable
        self._bar: tqdm | None = None
        self._stage: str | None = None
        self._started = 0.0
        self._log = False
        self._done = 0

    def __call__(self, progress: Progress) -> None:
        if progress.stage != self._stage or self._bar is None or progress.total != self._bar.total:
            self._open(progress)
        bar = self._bar
        if progress.loss is not None:
            bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)
        bar.update(max(0, progress.done - self._done))
        self._done = max(self._done, progress.done)
        if progress.done >= progress.total:
            self.close()

    def files(self, done: int, total: int, _name: str = "") -> None:
        """The importer's ``(done, total, name)`` callback."""
        self(Progress("importing", done, total))

    def close(self) -> None:
        bar = self._bar
        if bar is None:
            return
        if self._log:
            took = time.monotonic() - self._started
            rate = f", {self._done / took:.2f} {self.unit}/s" if took > 0 and self._done else ""
            print(f"  {self._stage}: {self._done}/{bar.total} in {took:.1f} s{rate}",
                  flush=True)
        bar.close()
        self._bar = None

    def _open(self, progress: Progress) -> None:
        self.close()
        self._stage = progress.stage
        self._bar = tqdm(total=progress.total, desc=f"  {progress.stage}", unit=self.unit,
                         file=sys.stderr, dynamic_ncols=True, disable=self.disable,
                         mininterval=0.5)
        self._started = time.monotonic()
        self._done = 0
        self._log = self._bar.disable and self.disable is None  # no terminal: plain lines
        if self._log:
            print(f"  {progress.stage}: {progress.total} to do", flush=True)
