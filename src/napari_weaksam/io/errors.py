"""Exceptions raised by the readers and writers.

Every message starts with the file name and ends with what the user can do about it.
"""

from __future__ import annotations


class ImageReadError(ValueError):
    """An image file could not be turned into an array."""


class LabelWriteError(ValueError):
    """A label array could not be written to disk."""
