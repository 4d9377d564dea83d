"""Shared fixtures and helpers for the project-store tests."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.project import Project
from napari_weaksam.project.catalog import NewItem

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO.parent / "shared" / "data"


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, array)
    return path


def gray(value: int, shape: tuple[int, int] = (16, 20)) -> np.ndarray:
    """A small grey image whose pixels encode ``value`` (so images are told apart)."""
    image = np.full(shape, value, dtype=np.uint8)
    image[0, 0] = 255 - value
    return image


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def slice_coded_volume(n_slices: int = 5, size: int = 12) -> np.ndarray:
    """An (X, Y, Z) int16 volume whose slice k along Z holds the value 10 * (k + 1)."""
    data = np.zeros((size, size + 2, n_slices), dtype=np.int16)
    for k in range(n_slices):
        data[:, :, k] = 10 * (k + 1)
    return data


def add_fake_items(project: Project, n: int, *, height: int = 256, width: int = 256,
                   name: str = "fake") -> list[int]:
    """Catalog ``n`` items of one (file-less) source, for tests that never read pixels."""
    source_id = project.catalog.add_source(
        path=str(project.root / f"{name}.nii.gz"), relpath=None, format="nifti", kind="volume",
        shape=(n, height, width), axes="ZYX", dtype="uint8", spacing=(1.0, 1.0, 1.0),
        sha256="0" * 64,
        items=[NewItem(f"{name} z{i:03d}", height, width, slice_index=i, display_index=i)
               for i in range(n)],
    )
    return [item.id for item in project.catalog.items(source_id)]


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
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
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

    def wait_for(self, text: str) -> None:
        while self.readline() != text:
            pass

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        self._pump_thread.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
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
