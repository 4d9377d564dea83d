"""napari-weaksam: image-level tags to pixel segmentations with Segment Anything."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-weaksam")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
