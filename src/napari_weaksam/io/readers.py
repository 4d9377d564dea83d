"""``read_image``: one entry point for every supported image format."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from napari_weaksam.io.errors import ImageReadError
from napari_weaksam.io.image_data import ImageData
from napari_weaksam.io.validation import validate_array

#: Suffix -> format name. Longer suffixes are matched first.
SUFFIX_FORMATS: dict[str, str] = {
    ".ome.tiff": "tiff",
    ".ome.tif": "tiff",
    ".ome.zarr": "zarr",
    ".nii.gz": "nifti",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".nii": "nifti",
    ".zarr": "zarr",
    ".svs": "slide",
    ".ndpi": "slide",
    ".scn": "slide",
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(SUFFIX_FORMATS)

#: Integer data whose minimum is at or below this looks like CT in Hounsfield units.
CT_MIN_HU = -500


def split_suffix(path: str | Path) -> tuple[str, str]:
    """``(stem, suffix)`` with compound suffixes kept whole ("brain", ".nii.gz")."""
    name = Path(path).name
    lower = name.lower()
    for suffix in sorted(SUFFIX_FORMATS, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)], suffix
    return Path(name).stem, Path(name).suffix.lower()


def is_supported(path: str | Path) -> bool:
    """True when ``path`` has a suffix ``read_image`` understands."""
    return split_suffix(path)[1] in SUFFIX_FORMATS


def _readers() -> dict[str, Callable[..., ImageData]]:
    from napari_weaksam.io.nifti import read_nifti
    from napari_weaksam.io.raster import read_raster
    from napari_weaksam.io.slide import read_slide
    from napari_weaksam.io.tiff import read_tiff
    from napari_weaksam.io.zarr_reader import read_zarr

    return {
        "png": lambda p, lazy: read_raster(p),
        "jpeg": lambda p, lazy: read_raster(p),
        "tiff": lambda p, lazy: read_tiff(p, lazy=lazy),
        "nifti": lambda p, lazy: read_nifti(p),
        "zarr": lambda p, lazy: read_zarr(p),
        "slide": lambda p, lazy: read_slide(p),
    }


def _check_file(path: Path, fmt: str | None) -> None:
    """Existence, emptiness and suffix checks before any library is called."""
    name = path.name
    if fmt is None:
        raise ImageReadError(
            f"{name}: unsupported file type. Supported formats: "
            f"{', '.join(SUPPORTED_SUFFIXES)}. Convert the image to one of them."
        )
    if not path.exists():
        raise ImageReadError(f"{name}: file not found. Check the path and try again.")
    if fmt == "zarr":
        if not path.is_dir() or not any(path.iterdir()):
            what = "is empty" if path.is_dir() else "is not a zarr directory"
            raise ImageReadError(
                f"{name}: the zarr store {what}. Re-export it or remove it from the folder."
            )
    elif path.is_dir():
        raise ImageReadError(f"{name}: is a folder, not an image file. Open the files inside.")
    elif path.stat().st_size == 0:
        raise ImageReadError(
            f"{name}: file is empty (0 bytes). Re-export it or remove it from the folder."
        )


def _describe(exc: BaseException) -> str:
    """A plain-words reason for a library exception."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "ended before" in text or "truncated" in text.lower():
        return "file is truncated or corrupt (it ends early)"
    if isinstance(exc, gzip.BadGzipFile | zlib.error) or "CRC" in text:
        return f"file is truncated or corrupt (gzip error: {text})"
    return f"could not be read as an image ({type(exc).__name__}: {text})"


def _looks_like_ct(image: ImageData) -> bool:
    data = image.data
    if image.format not in ("nifti", "tiff") or not isinstance(data, np.ndarray):
        return False
    return data.dtype.kind in "iu" and data.size > 0 and int(data.min()) <= CT_MIN_HU


def read_image(path: str | Path, *, lazy: bool = False) -> ImageData:
    """Read ``path`` into an :class:`ImageData` in display axis order.

    Big TIFFs, pyramids read with ``lazy=True`` and zarr stores stay lazy. Every problem is
    raised as :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    fmt = SUFFIX_FORMATS.get(split_suffix(path)[1])
    _check_file(path, fmt)
    try:
        image = _readers()[fmt](path, lazy)
        image.data = validate_array(image.data, path, image.axes)
        if image.levels is not None:
            rest = [validate_array(a, path, image.axes) for a in image.levels[1:]]
            image.levels = [image.data, *rest]
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError(
            f"{path.name}: the image is too big for the available memory. "
            "Convert it to a tiled pyramid (OME-TIFF/OME-Zarr) or crop it."
        ) from exc
    except Exception as exc:
        raise ImageReadError(
            f"{path.name}: {_describe(exc)}. "
            "Re-export it from the original software or remove it from the folder."
        ) from exc
    if _looks_like_ct(image):
        image.modality = "CT"
    return image
