"""Progress bars on the terminal (tqdm): one bar per stage, with its rate and time left."""

from __future__ import annotations

import sys

from tqdm import tqdm

from .progress import Progress


class StageBars:
    """A :data:`~.progress.ProgressCallback` that draws a tqdm bar for each stage in turn."""

    def __init__(self, unit: str = "it", *, disable: bool | None = None) -> None:
        self.unit = unit
        self.disable = disable
        self._bar: tqdm | None = None
        self._stage: str | None = None

    def __call__(self, progress: Progress) -> None:
        if progress.stage != self._stage or self._bar is None or progress.total != self._bar.total:
            self._open(progress)
        bar = self._bar
        if progress.loss is not None:
            bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)
        bar.update(max(0, progress.done - bar.n))
        if progress.done >= progress.total:
            self.close()

    def files(self, done: int, total: int, _name: str = "") -> None:
        """The importer's ``(done, total, name)`` callback."""
        self(Progress("importing", done, total))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar = None

    def _open(self, progress: Progress) -> None:
        self.close()
        self._stage = progress.stage
        self._bar = tqdm(total=progress.total, desc=f"  {progress.stage}", unit=self.unit,
                         file=sys.stderr, dynamic_ncols=True, disable=self.disable,
                         mininterval=0.5)
