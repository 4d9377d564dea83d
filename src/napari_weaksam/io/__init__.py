"""Image readers, label writers, intensity windowing and input validation."""

from napari_weaksam.io.errors import ImageReadError, LabelWriteError
from napari_weaksam.io.geometry import NiftiGeometry
from napari_weaksam.io.image_data import ImageData
from napari_weaksam.io.item_layout import check_item_layout, item_plane, tile_plane
from napari_weaksam.io.napari_hooks import (
    get_reader,
    write_labels_nifti,
    write_labels_tiff,
    write_labels_zarr,
)
from napari_weaksam.io.readers import SUPPORTED_SUFFIXES, is_supported, read_image
from napari_weaksam.io.validation import validate_array
from napari_weaksam.io.windowing import (
    WINDOW_PRESETS,
    default_contrast_limits,
    percentile_limits,
    window_to_limits,
)
from napari_weaksam.io.writers import LABEL_SUFFIXES, write_labels

__all__ = [
    "LABEL_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "WINDOW_PRESETS",
    "ImageData",
    "ImageReadError",
    "LabelWriteError",
    "NiftiGeometry",
    "check_item_layout",
    "default_contrast_limits",
    "get_reader",
    "is_supported",
    "item_plane",
    "percentile_limits",
    "read_image",
    "tile_plane",
    "validate_array",
    "window_to_limits",
    "write_labels",
    "write_labels_nifti",
    "write_labels_tiff",
    "write_labels_zarr",
]
