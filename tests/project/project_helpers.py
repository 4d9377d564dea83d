"""Plain helpers shared by the project-store tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import nibabel as nib
import numpy as np

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
