"""Image-level tags from and to CSV: binary and wide layouts."""

from __future__ import annotations

import csv

import pytest
from project_helpers import gray, slice_coded_volume, write_nifti, write_png

from napari_weaksam.project import Project, ProjectError
from napari_weaksam.project.importer import import_images
from napari_weaksam.project.tags_csv import export_tags, import_tags


def _write_csv(path, text: str):
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def _tag_names(project: Project) -> dict[str, set[str]]:
    """Item name -> names of the classes present, for tagged items only."""
    names = {c.id: c.name for c in project.catalog.classes()}
    return {project.catalog.item(i).name: {names[c] for c in cs}
            for i, cs in project.catalog.all_tags().items()}


@pytest.fixture
def data(tmp_path):
    """Three PNGs and a 4-slice NIfTI volume (identity affine: slice index = display index)."""
    folder = tmp_path / "data"
    for i, name in enumerate(("p1.png", "p2.png", "p3.png")):
        write_png(folder / name, gray(10 * i))
    write_nifti(folder / "vol.nii.gz", slice_coded_volume(4))
    return folder


@pytest.fixture
def imported(project, data):
    import_images(project, [data])
    return project


def test_binary_layout_tags_images_for_one_class(imported, tmp_path):
    csv_path = _write_csv(tmp_path / "t.csv", """
filename,label
p1.png,1
p2.png,0
""")
    report = import_tags(imported, csv_path, class_name="polyp")
    assert (report.applied, report.unmatched, report.errors) == (2, [], [])
    assert _tag_names(imported) == {"p1": {"polyp"}, "p2": set()}
    assert not imported.catalog.item(
        next(i.id for i in imported.catalog.items() if i.name == "p3")).tagged


def test_lgg_style_extra_columns_and_slice_index_of_a_png_are_ignored(imported, tmp_path):
    csv_path = _write_csv(tmp_path / "labels.csv", """
filename,label,patient_id,slice_index,n_slices,mask_area_px,source_file
p1.png,0,TCGA_X,1,20,0,kaggle_3m/TCGA_X/TCGA_X_1.tif
p2.png,1,TCGA_X,2,20,310,kaggle_3m/TCGA_X/TCGA_X_2.tif
p3.png,yes,TCGA_X,3,20,12,kaggle_3m/TCGA_X/TCGA_X_3.tif
""")
    report = import_tags(imported, csv_path)
    assert (report.applied, report.errors) == (3, [])
    assert _tag_names(imported) == {"p1": set(), "p2": {"tumour"}, "p3": {"tumour"}}


def test_volume_rows_use_slice_index(imported, tmp_path):
    csv_path = _write_csv(tmp_path / "slices.csv", """
filename,slice_index,label,mask_area_px
vol.nii.gz,0,0,0
vol.nii.gz,1,1,40
vol.nii.gz,2,1,12
""")
    report = import_tags(imported, csv_path)
    assert (report.applied, report.errors) == (3, [])
    assert _tag_names(imported) == {"vol z000": set(), "vol z001": {"tumour"},
                                    "vol z002": {"tumour"}}


def test_volume_slice_index_follows_the_source_voxel_order(project, tmp_path):
    write_nifti(tmp_path / "flip.nii.gz", slice_coded_volume(3), [[1, 0, 0, 0], [0, 1, 0, 0],
                                                                 [0, 0, -1, 0], [0, 0, 0, 1]])
    import_images(project, [tmp_path / "flip.nii.gz"])
    import_tags(project, _write_csv(tmp_path / "t.csv", "filename,slice_index,label\n"
                                    "flip.nii.gz,0,1\nflip.nii.gz,1,0\nflip.nii.gz,2,0"))
    (positive,) = [project.catalog.item(i) for i, t in project.catalog.all_tags().items() if t]
    assert (positive.slice_index, positive.display_index) == (0, 2)


def test_unmatched_rows_and_bad_rows_are_reported_and_the_rest_applied(imported, tmp_path):
    csv_path = _write_csv(tmp_path / "t.csv", """
filename,slice_index,label
p1.png,,1
ghost.png,,1
p2.png,,maybe
vol.nii.gz,,1
vol.nii.gz,9,1
p3.png,,0
""")
    report = import_tags(imported, csv_path)
    assert report.unmatched == ["ghost.png"]
    assert len(report.errors) == 3
    assert "line 4" in report.errors[0] and "'maybe'" in report.errors[0]
    assert "line 5" in report.errors[1] and "slice_index" in report.errors[1]
    assert "line 6" in report.errors[2] and "no slice 9" in report.errors[2]
    assert report.applied == 2
    assert _tag_names(imported) == {"p1": {"tumour"}, "p3": set()}
    assert "ghost.png" in report.summary()


def test_filename_with_folder_part_matches_and_ambiguous_name_is_an_error(project, tmp_path):
    write_png(tmp_path / "d" / "a" / "scan.png", gray(1))
    write_png(tmp_path / "d" / "b" / "scan.png", gray(2))
    import_images(project, [tmp_path / "d"])
    report = import_tags(project, _write_csv(tmp_path / "t.csv",
                                             "filename,label\nb/scan.png,1\nscan.png,0"))
    assert report.applied == 1
    assert "matches 2 files" in report.errors[0]
    assert _tag_names(project) == {"b/scan": {"tumour"}}


def test_export_then_import_into_a_fresh_project_gives_identical_tags(imported, data, tmp_path):
    tumour = imported.catalog.add_class("tumour")
    polyp = imported.catalog.add_class("polyp")
    items = {i.name: i.id for i in imported.catalog.items()}
    imported.catalog.set_tags(items["p1"], {tumour.id, polyp.id})
    imported.catalog.set_tags(items["p2"], set())
    imported.catalog.set_tags(items["vol z002"], {polyp.id})
    imported.catalog.set_tags(items["vol z000"], set())
    out = tmp_path / "tags.csv"
    assert export_tags(imported, out) == 7

    with Project.create(tmp_path / "fresh") as fresh:
        import_images(fresh, [data])
        report = import_tags(fresh, out)
        assert (report.applied, report.unmatched, report.errors) == (4, [], [])
        assert [c.name for c in fresh.catalog.classes()] == ["tumour", "polyp"]
        assert _tag_names(fresh) == _tag_names(imported)
        assert fresh.catalog.tag_counts() == imported.catalog.tag_counts()


def test_export_writes_the_wide_layout(imported, tmp_path):
    tumour = imported.catalog.add_class("tumour")
    items = {i.name: i.id for i in imported.catalog.items()}
    imported.catalog.set_tags(items["vol z001"], {tumour.id})
    export_tags(imported, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = {r["item"]: r for r in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == ["item", "filename", "slice_index", "tagged",
                                               "tumour"]
    assert rows["vol z001"] == {"item": "vol z001", "filename": "vol.nii.gz",
                                "slice_index": "1", "tagged": "1", "tumour": "1"}
    assert rows["p1"] == {"item": "p1", "filename": "p1.png", "slice_index": "",
                          "tagged": "0", "tumour": ""}
    assert not list(tmp_path.glob(".*.partial"))


def test_wide_row_without_a_value_for_a_class_is_an_error(imported, tmp_path):
    csv_path = _write_csv(tmp_path / "w.csv", """
item,filename,slice_index,tagged,tumour,polyp
p1,p1.png,,1,1,
p2,p2.png,,1,0,1
""")
    report = import_tags(imported, csv_path)
    assert report.applied == 1 and "no 0/1 value for polyp" in report.errors[0]
    assert _tag_names(imported) == {"p2": {"polyp"}}


def test_csv_without_known_columns_is_refused(imported, tmp_path):
    with pytest.raises(ProjectError, match="expected a 'label' column"):
        import_tags(imported, _write_csv(tmp_path / "x.csv", "filename,score\np1.png,3"))
    with pytest.raises(ProjectError, match="needs a 'filename'"):
        import_tags(imported, _write_csv(tmp_path / "y.csv", "name,label\np1.png,1"))


def test_missing_or_empty_csv_is_a_project_error(imported, tmp_path):
    with pytest.raises(ProjectError, match="cannot read the tags file"):
        import_tags(imported, tmp_path / "nothere.csv")
    with pytest.raises(ProjectError, match="empty"):
        import_tags(imported, _write_csv(tmp_path / "empty.csv", ""))


def test_utf8_bom_and_spaces_in_header_are_tolerated(imported, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefffilename , label\np1.png , 1\n".encode())
    assert import_tags(imported, path).applied == 1
    assert _tag_names(imported) == {"p1": {"tumour"}}
