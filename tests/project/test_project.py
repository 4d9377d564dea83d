"""Project folders: create/open rules, and everything surviving a close and reopen."""

from __future__ import annotations

import json

import numpy as np
import pytest
from project_helpers import gray, write_nifti, write_png

from napari_weaksam.project import LabelState, Project, ProjectError
from napari_weaksam.project.importer import import_images


def test_create_makes_the_layout_and_marker(tmp_path):
    with Project.create(tmp_path / "p") as project:
        assert project.root == (tmp_path / "p").absolute()
    root = tmp_path / "p"
    for sub in ("arrays", "checkpoints", "cache"):
        assert (root / sub).is_dir()
    assert json.loads((root / "project.json").read_text())["format"] == "napari-weaksam project"
    assert Project.is_project(root)


def test_create_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not empty"):
        Project.create(tmp_path / "p")
    assert not Project.is_project(tmp_path / "p")


def test_create_twice_refuses_unless_exist_ok(tmp_path):
    Project.create(tmp_path / "p").close()
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "p")
    with Project.create(tmp_path / "p", exist_ok=True) as again:
        assert again.catalog.count_items() == 0


def test_open_a_plain_folder_says_it_is_not_a_project(tmp_path):
    with pytest.raises(ProjectError, match="not a napari-weaksam project"):
        Project.open(tmp_path)


def test_settings_survive_reopen(tmp_path):
    with Project.create(tmp_path / "p") as project:
        assert project.setting("backbone", "none") == "none"
        project.set_setting("backbone", {"model": "litemedsam", "size": 256})
    with Project.open(tmp_path / "p") as project:
        assert project.setting("backbone") == {"model": "litemedsam", "size": 256}


def test_everything_is_there_after_reopen(tmp_path):
    folder = tmp_path / "images"
    write_png(folder / "a.png", gray(10))
    write_png(folder / "b.png", gray(20))
    volume = np.arange(12 * 14 * 3, dtype=np.int16).reshape(12, 14, 3)
    write_nifti(folder / "vol.nii.gz", volume)
    rng = np.random.default_rng(1)

    with Project.create(tmp_path / "p") as project:
        tumour = project.catalog.add_class("tumour")
        polyp = project.catalog.add_class("polyp")
        report = import_images(project, [folder])
        assert report.skipped == []
        items = {i.name: i for i in project.catalog.items()}
        a, b, z0, z1, z2 = (items[n] for n in ("a", "b", "vol z000", "vol z001", "vol z002"))
        project.catalog.set_tags(a.id, {tumour.id, polyp.id})
        project.catalog.set_tags(b.id, set())
        project.catalog.toggle_tag(z1.id, tumour.id)
        masks = {i.id: rng.integers(0, 3, (i.height, i.width)).astype(np.uint8)
                 for i in (a, b, z0, z1)}
        for item_id, mask in masks.items():
            project.labels.add_proposal(item_id, mask, method="cam", confidence=0.7)
        correction = (masks[b.id] + 1).astype(np.uint8)
        project.labels.review(a.id, "accepted")
        project.labels.review(b.id, "corrected", mask=correction)
        project.labels.review(z0.id, "rejected")
        before_items = project.catalog.items()
        before_sources = project.catalog.sources()

    with Project.open(tmp_path / "p") as project:
        assert project.catalog.items() == before_items
        assert project.catalog.sources() == before_sources
        assert [c.name for c in project.catalog.classes()] == ["tumour", "polyp"]
        assert project.catalog.all_tags() == {
            a.id: {tumour.id, polyp.id}, b.id: set(), z1.id: {tumour.id},
        }
        assert not project.catalog.item(z2.id).tagged
        assert project.labels.states() == {
            a.id: LabelState.ACCEPTED, b.id: LabelState.CORRECTED,
            z0.id: LabelState.REJECTED, z1.id: LabelState.PROPOSED,
        }
        for item_id, mask in masks.items():
            proposal = project.labels.latest_proposal(item_id)
            assert proposal.confidence == pytest.approx(0.7)
            np.testing.assert_array_equal(project.labels.proposal_mask(proposal), mask)
        np.testing.assert_array_equal(project.labels.final_mask(a.id), masks[a.id])
        np.testing.assert_array_equal(project.labels.final_mask(b.id), correction)
        assert project.labels.final_mask(z0.id) is None
        np.testing.assert_array_equal(project.item_image(a), gray(10))
        assert project.item_image(z1).shape == (z1.height, z1.width)


def test_reopen_keeps_referenced_arrays_and_sweeps_orphans(tmp_path):
    with Project.create(tmp_path / "p") as project:
        write_png(tmp_path / "a.png", gray(3))
        import_images(project, [tmp_path / "a.png"])
        item = project.catalog.items()[0]
        kept = project.labels.add_proposal(item.id, np.ones((16, 20), np.uint8), method="m")
        orphan = project.arrays.write("masks/proposals", np.ones((2, 2), np.uint8))
        (project.arrays.root / ".tmp" / "half").mkdir(parents=True)
    with Project.open(tmp_path / "p") as project:
        assert project.arrays.exists(kept.array_key)
        assert not project.arrays.exists(orphan)
        assert not (project.arrays.root / ".tmp").exists()


def test_read_only_open_does_not_sweep(tmp_path):
    with Project.create(tmp_path / "p") as project:
        orphan = project.arrays.write("masks/proposals", np.ones((2, 2), np.uint8))
    with Project.open(tmp_path / "p", read_only=True) as project:
        assert project.arrays.exists(orphan)


def test_missing_source_file_is_named_in_the_error(tmp_path):
    write_png(tmp_path / "src" / "gone.png", gray(1))
    with Project.create(tmp_path / "p") as project:
        import_images(project, [tmp_path / "src"])
        (tmp_path / "src" / "gone.png").unlink()
        with pytest.raises(ProjectError, match="gone.png: the image file is missing"):
            project.item_image(project.catalog.items()[0])
