"""The in-memory description of an opened image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_weaksam.io.geometry import NiftiGeometry

__all__ = ["ImageData", "NiftiGeometry"]


@dataclass
class ImageData:
    """An opened image in display axis order.

    ``axes`` is one of ``"YX"``, ``"YXC"`` (RGB/RGBA), ``"CYX"`` (multi-channel) or ``"ZYX"``.
    ``data`` is a numpy array, or a lazy array (level 0) for big or multiscale inputs.
    ``spacing`` has one value per non-channel axis, in display order.
    """

    path: Path
    data: Any
    axes: str
    spacing: tuple[float, ...]
    format: str
    levels: list[Any] | None = None
    nifti: NiftiGeometry | None = None
    modality: str | None = None
    #: level-0 pixel size in µm when the file states it (slides, OME-TIFF, metric TIFF tags)
    microns_per_pixel: float | None = None

    @property
    def is_volume(self) -> bool:
        """True for a 3D (ZYX) volume."""
        return "Z" in self.axes

    @property
    def is_rgb(self) -> bool:
        """True for an RGB/RGBA image (channels last, 3 or 4 of them)."""
        return self.axes.endswith("C") and self.data.shape[-1] in (3, 4)

    @property
    def n_slices(self) -> int:
        """Number of display slices (1 for a 2D image)."""
        return int(self.data.shape[self.axes.index("Z")]) if self.is_volume else 1

    @property
    def dtype(self) -> np.dtype:
        """Data type of the pixels."""
        return np.dtype(self.data.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the level-0 data."""
        return tuple(int(s) for s in self.data.shape)

    def slice(self, display_index: int) -> np.ndarray:
        """One 2D plane (YX, YXC or CYX) as a numpy array.

        For a 2D image the image itself is returned and ``display_index`` must be 0.
        """
        index = int(display_index)
        if not 0 <= index < self.n_slices:
            raise IndexError(
                f"{self.path.name}: slice {index} is out of range (0..{self.n_slices - 1})"
            )
        if not self.is_volume:
            return np.asarray(self.data)
        return np.asarray(self.data[index])
