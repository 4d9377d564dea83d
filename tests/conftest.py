"""Fixtures for every test: isolated user settings, and one pre-embedded sample project.

Embedding the 33-item sample with LiteMedSAM takes most of a minute on a 2-core CPU, so it is done
once per test session; tests that run a method take a copy (``sample_copy``), cache included.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from napari_weaksam.sample import sample_dir


@pytest.fixture(autouse=True)
def isolated_user_settings(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WEAKSAM_SETTINGS", str(tmp_path_factory.mktemp("settings") / "s.json"))
    monkeypatch.delenv("WEAKSAM_WEIGHTS_DIR", raising=False)


@pytest.fixture(scope="session")
def litemedsam():
    """The bundled LiteMedSAM on the CPU (two threads, as on CI)."""
    import torch

    from napari_weaksam.backbones.loaders import load_backbone

    torch.set_num_threads(2)
    return load_backbone("litemedsam")


@pytest.fixture(scope="session")
def embedded_sample(tmp_path_factory, litemedsam) -> Path:
    """The bundled sample project with every item's LiteMedSAM embedding cached (do not write
    to it: take a ``sample_copy``)."""
    from napari_weaksam.project import Project
    from napari_weaksam.sample import make_sample_project

    root = make_sample_project(tmp_path_factory.mktemp("embedded") / "sample")
    with Project.open(root) as project:
        items = project.catalog.items()
        steps = project.embedding_cache(litemedsam).fill(
            lambda i: project.item_image(items[i]), range(len(items)))
        for _ in steps:
            pass
    return root


def _copy_project(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".lock"))
    return dest


@pytest.fixture(scope="session")
def copy_project() -> Callable[[Path, Path], Path]:
    """``copy_project(source, dest)``: a copy of a project folder (without its lock file)."""
    return _copy_project


@pytest.fixture
def sample_copy(embedded_sample, tmp_path) -> Callable[[str], Path]:
    """``sample_copy(name)``: a fresh copy of the pre-embedded sample under ``tmp_path``."""
    return lambda name="sample": _copy_project(embedded_sample, tmp_path / name)


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
