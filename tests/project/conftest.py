"""Shared fixtures and helpers for the project-store tests."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from project_helpers import DATA_DIR, gray, write_png

from napari_weaksam.project import Project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    proj = Project.create(tmp_path / "proj")
    yield proj
    proj.close()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three readable PNGs: two grey (different sizes) and one RGB."""
    folder = tmp_path / "images"
    write_png(folder / "a.png", gray(10))
    write_png(folder / "b.png", gray(20, (24, 18)))
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 1] = 77
    write_png(folder / "c.png", rgb)
    return folder


@pytest.fixture
def shared_data() -> Path:
    """The optional real-data folder next to the repository; skipped when absent."""
    if not DATA_DIR.is_dir():
        pytest.skip("shared real-data folder not found")
    return DATA_DIR


class Child:
    """A Python subprocess running a script; its stdout lines are read with a timeout."""

    def __init__(self, script: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def readline(self, timeout: float = 60) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError("the child process printed nothing in time") from None
        if line is None:
            self.proc.wait(timeout=10)
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"the child process ended early:\n{stderr}")
        return line

    def ask(self, line: str = "") -> str:
        """Send one line on stdin and return the next line printed."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.readline()

    def wait_for(self, text: str) -> None:
        while self.readline() != text:
            pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def drain(self) -> list[str]:
        """Every line not read yet, once the process has ended."""
        self.proc.wait(timeout=30)
        self._pump_thread.join(timeout=30)
        rest = []
        while (line := self._lines.get_nowait()) is not None:
            rest.append(line)
        return rest

    def close(self) -> None:
        self.kill()
        self._pump_thread.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:
    """``spawn(source, *args)`` writes ``source`` to a script and runs it; killed at teardown."""
    children: list[Child] = []

    def start(source: str, *args: str) -> Child:
        script = tmp_path / f"child_{len(children)}.py"
        script.write_text(textwrap.dedent(source), encoding="utf-8")
        child = Child(script, *args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()
