"""Fixtures for the method tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from napari_weaksam.sample import sample_dir


@pytest.fixture
def unseen_patches(tmp_path) -> tuple[Path, list[str]]:
    """The sample's four adenocarcinoma patches copied under new names (``unseen <name>.png``)
    into a fresh folder: images no project has seen, whose reference masks are the sample's;
    returns the folder and the original names."""
    folder = tmp_path / "new"
    folder.mkdir()
    names = sorted(p.stem for p in (sample_dir() / "masks").glob("adenocarcinoma*.png"))
    for name in names:
        shutil.copy(sample_dir() / "images" / f"{name}.png", folder / f"unseen {name}.png")
    return folder, names
