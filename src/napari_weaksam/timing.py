"""Wall-clock seconds per stage of a run, as rounds record them in their metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


@contextlib.contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Adds the wall-clock seconds the block took to ``seconds[stage]`` (also when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
