"""The npe2 manifest is valid, found through the entry point, and its commands import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import import_module
from pathlib import Path

import pytest
from npe2 import PluginManager, PluginManifest

REPO = Path(__file__).resolve().parents[1]


def test_manifest_validates_and_is_discovered():
    manifest = PluginManifest.from_distribution("napari-weaksam")
    assert manifest.name == "napari-weaksam"
    pm = PluginManager()
    pm.discover()
    assert pm.get_manifest("napari-weaksam").display_name == "WeakSAM"
    readers = list(pm.iter_compatible_readers(["scan.nii.gz"]))
    assert any(r.plugin_name == "napari-weaksam" for r in readers)


def test_every_command_imports():
    manifest = PluginManifest.from_distribution("napari-weaksam")
    for command in manifest.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(import_module(module), attr)), command.id


def test_repository_manifest_is_the_packaged_one():
    packaged = REPO / "src" / "napari_weaksam" / "napari.yaml"
    assert (REPO / "napari.yaml").read_text() == packaged.read_text()


def test_reader_claims_nifti_and_writers_cover_label_formats():
    manifest = PluginManifest.from_distribution("napari-weaksam")
    patterns = manifest.contributions.readers[0].filename_patterns
    assert "*.nii.gz" in patterns and "*.zarr" in patterns
    extensions = {e for w in manifest.contributions.writers for e in w.filename_extensions}
    assert {".tif", ".nii.gz", ".zarr"} <= extensions


@pytest.mark.slow
def test_wheel_carries_manifest_and_sample(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    wheel = next(tmp_path.glob("napari_weaksam-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_weaksam/napari.yaml" in names
    assert "napari_weaksam/sample_data/images/brain1.nii.gz" in names
    assert "napari_weaksam/sample_data/ATTRIBUTION.md" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "napari_weaksam:napari.yaml" in text
