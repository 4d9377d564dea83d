"""Importing files and folders: good files become items, bad ones are reported and skipped."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tifffile
from project_helpers import gray, slice_coded_volume, write_nifti, write_png

from napari_weaksam.project import Project
from napari_weaksam.project.importer import display_stem, find_images, import_images


def _names(project: Project) -> list[str]:
    return [i.name for i in project.catalog.items()]


@pytest.fixture
def messy_folder(image_folder):
    """The three good PNGs plus a corrupt PNG, an empty PNG and a 4D TIFF."""
    (image_folder / "b_corrupt.png").write_bytes(np.random.default_rng(0).bytes(400))
    (image_folder / "b_empty.png").write_bytes(b"")
    tifffile.imwrite(image_folder / "b_four_d.tif", np.zeros((2, 3, 16, 16), np.uint8),
                     photometric="minisblack")
    (image_folder / "notes.txt").write_text("not an image")
    return image_folder


def test_good_files_become_items_with_their_size(project, image_folder):
    report = import_images(project, [image_folder])
    assert len(report.added) == 3 and report.items == 3 and report.skipped == []
    items = {i.name: i for i in project.catalog.items()}
    assert set(items) == {"a", "b", "c"}
    assert (items["b"].height, items["b"].width, items["b"].channels) == (24, 18, 1)
    assert items["c"].channels == 3
    assert all(i.slice_index is None and i.display_index == 0 for i in items.values())
    np.testing.assert_array_equal(project.item_image(items["a"]), gray(10))


def test_bad_files_are_skipped_with_their_name_and_the_rest_imported(project, messy_folder):
    report = import_images(project, [messy_folder])
    assert sorted(_names(project)) == ["a", "b", "c"]
    skipped = {os.path.basename(path): reason for path, reason in report.skipped}
    assert set(skipped) == {"b_corrupt.png", "b_empty.png", "b_four_d.tif"}
    for name, reason in skipped.items():
        assert name in reason
    assert "empty" in skipped["b_empty.png"]
    assert "not supported" in skipped["b_four_d.tif"]
    assert "3 skipped" in report.summary() and "b_corrupt.png" in report.summary()


def test_a_failed_import_loses_nothing_imported_before(project, image_folder, tmp_path):
    write_png(tmp_path / "first" / "early.png", gray(5))
    import_images(project, [tmp_path / "first"])
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    report = import_images(project, [image_folder])
    assert [os.path.basename(p) for p, _ in report.skipped] == ["broken.png"]
    assert sorted(_names(project)) == ["a", "b", "c", "early"]
    np.testing.assert_array_equal(project.item_image(project.catalog.items()[0]), gray(5))


def test_reimport_reports_already_present(project, image_folder):
    import_images(project, [image_folder])
    again = import_images(project, [image_folder])
    assert again.added == [] and again.items == 0
    assert len(again.already_present) == 3
    assert project.catalog.count_items() == 3


def test_progress_is_reported_for_every_file(project, image_folder):
    calls = []
    import_images(project, [image_folder], progress=lambda i, n, what: calls.append((i, n, what)))
    assert calls == [(0, 3, "a.png"), (1, 3, "b.png"), (2, 3, "c.png"), (3, 3, "done")]


def test_nifti_volume_gives_one_item_per_slice(project, tmp_path):
    write_nifti(tmp_path / "v" / "brain.nii.gz", slice_coded_volume(5))
    report = import_images(project, [tmp_path / "v"])
    assert report.items == 5
    (source,) = project.catalog.sources()
    assert (source.kind, source.format, source.axes) == ("volume", "nifti", "ZYX")
    assert source.geometry is not None
    items = project.catalog.items()
    assert [i.name for i in items] == [f"brain z{k:03d}" for k in range(5)]
    assert [i.display_index for i in items] == list(range(5))
    for item in items:
        assert np.all(project.item_image(item) == 10 * (item.slice_index + 1))


def test_nifti_slice_index_is_the_source_voxel_index_when_display_is_flipped(project, tmp_path):
    flipped = np.diag([1.0, 1.0, -2.5, 1.0])  # slice axis runs superior -> inferior
    write_nifti(tmp_path / "flip.nii.gz", slice_coded_volume(4), flipped)
    import_images(project, [tmp_path / "flip.nii.gz"])
    items = project.catalog.items()
    assert [i.display_index for i in items] == [0, 1, 2, 3]
    assert [i.slice_index for i in items] == [3, 2, 1, 0]
    assert [i.name for i in items] == ["flip z003", "flip z002", "flip z001", "flip z000"]
    for item in items:
        assert np.all(project.item_image(item) == 10 * (item.slice_index + 1))


def test_tiff_stack_gives_slices_in_file_order(project, tmp_path):
    stack = np.stack([np.full((16, 16), 7 * k, np.uint16) for k in range(5)])
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    import_images(project, [tmp_path / "stack.tif"])
    items = project.catalog.items()
    assert [(i.slice_index, i.display_index) for i in items] == [(k, k) for k in range(5)]
    assert np.all(project.item_image(items[3]) == 21)


def test_duplicate_stems_in_two_subfolders_get_unique_names(project, tmp_path):
    write_png(tmp_path / "in" / "left" / "scan.png", gray(1))
    write_png(tmp_path / "in" / "right" / "scan.png", gray(2))
    write_png(tmp_path / "in" / "right" / "scan.jpg.png", gray(3))
    import_images(project, [tmp_path / "in"])
    items = {i.name: i for i in project.catalog.items()}
    assert set(items) == {"scan", "right/scan", "scan.jpg"}
    np.testing.assert_array_equal(project.item_image(items["right/scan"]), gray(2))


def test_same_name_imported_twice_from_elsewhere_gets_a_new_name(project, tmp_path):
    write_png(tmp_path / "x" / "scan.png", gray(1))
    write_png(tmp_path / "y" / "scan.png", gray(2))
    import_images(project, [tmp_path / "x"])
    import_images(project, [tmp_path / "y"])
    assert len(set(_names(project))) == 2


def test_duplicate_volume_stems_in_two_subfolders_are_both_imported(project, tmp_path):
    write_nifti(tmp_path / "in" / "a" / "vol.nii.gz", slice_coded_volume(3))
    write_nifti(tmp_path / "in" / "b" / "vol.nii.gz", slice_coded_volume(3))
    report = import_images(project, [tmp_path / "in"])
    assert report.items == 6
    assert len(set(_names(project))) == 6


def test_copy_puts_files_in_the_project_and_survives_deleting_originals(tmp_path):
    src = tmp_path / "outside"
    write_png(src / "a.png", gray(10))
    write_png(src / "sub" / "b.png", gray(30))
    write_nifti(src / "vol.nii.gz", slice_coded_volume(3))
    with Project.create(tmp_path / "p") as project:
        import_images(project, [src], copy=True)
        rels = sorted(s.relpath for s in project.catalog.sources())
    assert rels == ["images/a.png", "images/sub/b.png", "images/vol.nii.gz"]
    assert all((tmp_path / "p" / r).is_file() for r in rels)
    shutil.rmtree(src)
    with Project.open(tmp_path / "p") as project:
        items = {i.name: i for i in project.catalog.items()}
        np.testing.assert_array_equal(project.item_image(items["a"]), gray(10))
        np.testing.assert_array_equal(project.item_image(items["b"]), gray(30))
        assert np.all(project.item_image(items["vol z002"]) == 30)


def test_copy_of_two_same_named_files_keeps_both_images(project, tmp_path):
    write_png(tmp_path / "x" / "scan.png", gray(1))
    write_png(tmp_path / "y" / "scan.png", gray(2))
    import_images(project, [tmp_path / "x" / "scan.png"], copy=True)
    import_images(project, [tmp_path / "y" / "scan.png"], copy=True)
    first, second = project.catalog.items()
    np.testing.assert_array_equal(project.item_image(second), gray(2))
    np.testing.assert_array_equal(project.item_image(first), gray(1))


def test_files_inside_the_project_are_stored_with_a_relpath(project):
    write_png(project.root / "images" / "here.png", gray(4))
    import_images(project, [project.root / "images"])
    (source,) = project.catalog.sources()
    assert source.relpath == "images/here.png"


def test_missing_file_is_skipped_with_its_name(project, tmp_path):
    report = import_images(project, [tmp_path / "nothere.png"])
    assert len(report.skipped) == 1 and "nothere.png" in report.skipped[0][1]


def test_find_images_skips_hidden_and_unsupported(tmp_path):
    write_png(tmp_path / "a.png", gray(1))
    write_png(tmp_path / ".hidden" / "b.png", gray(1))
    write_png(tmp_path / ".c.png", gray(1))
    (tmp_path / "d.txt").write_text("x")
    assert find_images(tmp_path) == [tmp_path / "a.png"]


@pytest.mark.parametrize("name, stem", [("brain1.nii.gz", "brain1"), ("x.ome.tif", "x"),
                                        ("a.b.png", "a.b"), ("SCAN.NII.GZ", "SCAN")])
def test_display_stem_strips_double_suffixes(tmp_path, name, stem):
    assert display_stem(tmp_path / name) == stem
