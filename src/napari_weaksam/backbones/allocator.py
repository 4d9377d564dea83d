"""Keep freed tensor memory in the C heap for the next forward pass (glibc only).

PyTorch on a CPU allocates activations with ``malloc``. glibc serves a block above its mmap
threshold (128 KiB at first) with fresh pages and unmaps them on ``free``, so each forward pass
of SAM's encoder page-faults its activations in again: a third of the encoding time was spent
in the kernel. A 32 MiB mmap threshold (glibc's ceiling) and a 256 MiB trim threshold keep those
blocks for reuse. Measured on this project's 2-core CPU, LiteMedSAM in bf16, 16 lgg_mri_dev
slices one at a time: 0.57–0.62 s per image instead of 0.64–0.84 s, kernel time 12–15 s instead
of 34–35 s for the whole script. The process may keep up to 256 MiB more than it uses.

Applied once, when a SAM model is loaded (:func:`.loaders.load_backbone`). ``WEAKSAM_MALLOC=
default`` leaves the allocator as it is; other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024**2    # glibc refuses more on 64-bit machines
TRIM_THRESHOLD_BYTES = 256 * 1024**2
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds, once per process; whether they are raised."""
    global _applied
    if _applied is None:
        _applied = _raise_thresholds()
    return _applied


def _raise_thresholds() -> bool:
    if os.environ.get("WEAKSAM_MALLOC", "") == "default":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
