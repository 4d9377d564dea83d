"""Whole-slide images (Aperio SVS, Hamamatsu NDPI, Leica SCN) through tiffslide.

tiffslide reads the vendor formats with tifffile (no native library to install, the same TIFF
code as the rest of :mod:`napari_weaksam.io`) and knows each vendor's metadata: the pixel size
in µm and the objective power. Every pyramid level is a lazy zarr array; nothing is decoded until
a region of it is read. Pyramidal TIFF and OME-TIFF go through :mod:`.tiff` (same lazy levels).
"""

from __future__ import annotations

from pathlib import Path

from napari_weaksam.io.image_data import ImageData


def read_slide(path: Path) -> ImageData:
    """Open a vendor slide: level 0 and every lower-resolution level, lazily, with µm/px."""
    import tiffslide

    slide = tiffslide.TiffSlide(path)
    group = slide.zarr_group
    levels = [group[str(i)] for i in range(slide.level_count)]
    props = slide.properties
    mpp_x, mpp_y = props.get("tiffslide.mpp-x"), props.get("tiffslide.mpp-y")
    spacing = (float(mpp_y), float(mpp_x)) if mpp_x and mpp_y else (1.0, 1.0)
    axes = "YXC" if levels[0].ndim == 3 else "YX"
    return ImageData(path=path, data=levels[0], axes=axes, spacing=spacing, format="slide",
                     levels=levels if len(levels) > 1 else None,
                     microns_per_pixel=float(mpp_x) if mpp_x else None)
