"""Loading triton with its own symbols, so that it cannot crash a napari window.

torchvision imports ``torch._dynamo``, which imports triton when it is installed (CUDA builds of
torch ship it). On software OpenGL (Mesa llvmpipe: virtual machines, remote desktops, Xvfb) the
napari canvas has already loaded Mesa's LLVM, and triton's library, linked against another LLVM,
then binds to Mesa's symbols and crashes the process. Loading it with ``RTLD_DEEPBIND`` makes it
resolve its own symbols first. Nothing changes when triton is absent or already imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys


def import_triton_isolated() -> None:
    if "triton" in sys.modules or not hasattr(os, "RTLD_DEEPBIND"):
        return
    if importlib.util.find_spec("triton") is None:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        importlib.import_module("triton")
    except Exception:  # noqa: BLE001, S110 - torch itself treats a broken triton as absent
        pass
    finally:
        sys.setdlopenflags(flags)
