"""NIfTI voxel geometry: how a source volume maps onto the display orientation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

#: Display axis codes for (Z, Y, X): inferior->superior, anterior->posterior (anterior at the
#: top), patient right->left (radiological convention: patient right on the screen's left).
DISPLAY_AXCODES: tuple[str, str, str] = ("S", "P", "L")


def _spatial_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """First three dims of ``shape``, padded with ones (a 2D NIfTI is one slice)."""
    padded = tuple(shape) + (1, 1, 1)
    return (int(padded[0]), int(padded[1]), int(padded[2]))


@dataclass
class NiftiGeometry:
    """Geometry of a NIfTI source file and its transform to display order.

    ``to_display`` is a nibabel orientation array (3x2): row ``i`` holds the display axis that
    source axis ``i`` becomes and whether it is flipped (-1).
    """

    affine: np.ndarray
    source_shape: tuple[int, ...]
    to_display: np.ndarray

    @classmethod
    def from_affine(cls, affine: np.ndarray, source_shape: tuple[int, ...]) -> NiftiGeometry:
        """Geometry for a file with ``affine`` and array shape ``source_shape``."""
        affine = np.asarray(affine, dtype=float)
        transform = ornt_transform(io_orientation(affine), axcodes2ornt(DISPLAY_AXCODES))
        return cls(affine, tuple(int(s) for s in source_shape), transform)

    @classmethod
    def for_display(
        cls, display_shape: tuple[int, ...], spacing: tuple[float, ...] | None = None
    ) -> NiftiGeometry:
        """Synthetic geometry whose display order is ``display_shape`` (ZYX or YX).

        The source array is the display array with its axes reversed (X, Y, Z) and a diagonal
        affine with ``spacing``, so reading the written file gives back the same display array.
        """
        shape = tuple(int(s) for s in display_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        sp = tuple(float(s) for s in (spacing or ()))
        sp = (1.0,) * (3 - len(sp)) + sp[-3:]
        sz, sy, sx = sp
        affine = np.diag([-sx, -sy, sz, 1.0])
        return cls.from_affine(affine, shape[::-1])

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The source shape as three spatial dims."""
        return _spatial_shape(self.source_shape)

    @property
    def display_shape(self) -> tuple[int, int, int]:
        """Shape of the (unsqueezed) 3D display array."""
        out = [0, 0, 0]
        for src_axis, (disp_axis, _flip) in enumerate(self.to_display):
            out[int(disp_axis)] = self.spatial_shape[src_axis]
        return (out[0], out[1], out[2])

    @property
    def display_affine(self) -> np.ndarray:
        """Voxel-to-world affine of the display-ordered (Z, Y, X) array."""
        return self.affine @ inv_ornt_aff(self.to_display, self.spatial_shape)

    @property
    def source_slice_axis(self) -> int:
        """The source array axis that became display Z."""
        return int(np.flatnonzero(self.to_display[:, 0] == 0)[0])

    def _slice_flipped(self) -> bool:
        return bool(self.to_display[self.source_slice_axis, 1] < 0)

    def source_slice_to_display(self, k: int) -> int:
        """Display Z index of source slice ``k`` (along :attr:`source_slice_axis`)."""
        n = self.spatial_shape[self.source_slice_axis]
        return n - 1 - int(k) if self._slice_flipped() else int(k)

    def display_slice_to_source(self, i: int) -> int:
        """Source slice index (along :attr:`source_slice_axis`) of display Z index ``i``."""
        return self.source_slice_to_display(i)  # a flip is its own inverse

    def source_to_display(self, arr: np.ndarray) -> np.ndarray:
        """Reorder a source-ordered array (``source_shape``) into 3D display order."""
        arr = np.asanyarray(arr).reshape(self.spatial_shape)
        return apply_orientation(arr, self.to_display)

    def display_to_source(self, arr: Any) -> np.ndarray:
        """Reorder a display-ordered array (ZYX, or YX for one slice) back to source order."""
        arr = np.asanyarray(arr)
        if arr.size != int(np.prod(self.display_shape)):
            raise ValueError(
                f"array shape {arr.shape} does not match the image's display shape "
                f"{self.display_shape}"
            )
        arr = arr.reshape(self.display_shape)
        back = np.zeros_like(np.asarray(self.to_display, dtype=float))
        for src_axis, (disp_axis, flip) in enumerate(self.to_display):
            back[int(disp_axis)] = (src_axis, flip)
        return np.ascontiguousarray(apply_orientation(arr, back)).reshape(self.source_shape)

    def to_metadata(self) -> dict[str, Any]:
        """Plain (JSON-friendly) representation, for layer metadata."""
        return {
            "affine": np.asarray(self.affine, dtype=float).tolist(),
            "source_shape": list(self.source_shape),
            "to_display": np.asarray(self.to_display).tolist(),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> NiftiGeometry:
        """Inverse of :meth:`to_metadata`; ``to_display`` is recomputed when missing."""
        geometry = cls.from_affine(np.asarray(meta["affine"], dtype=float), meta["source_shape"])
        if meta.get("to_display") is not None:
            geometry.to_display = np.asarray(meta["to_display"], dtype=float)
        return geometry
