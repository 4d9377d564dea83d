"""Segment Anything backbones: where their weights are, which device runs them."""

from ._native_libraries import import_triton_isolated

import_triton_isolated()
