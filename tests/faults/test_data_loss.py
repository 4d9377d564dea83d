"""Things a person did that used to lose data: each must now be refused or harmless."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest_faults import Saved, assert_intact

from napari_weaksam.cli import main
from napari_weaksam.project import Project


def _png(path: Path, value: int, shape=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.full(shape, value, np.uint8))
    return path


@pytest.fixture
def tagged(tmp_path, capsys) -> Path:
    """A project of four PNGs, two classes tagged (tumour on img0/img2, polyp on img1)."""
    folder = tmp_path / "imgs"
    for i in range(4):
        _png(folder / f"img{i}.png", 40 * i)
    tags = tmp_path / "tags.csv"
    tags.write_text("item,filename,slice_index,tagged,tumour,polyp\n"
                    "img0,img0.png,,1,1,0\nimg1,img1.png,,1,0,1\nimg2,img2.png,,1,1,0\n",
                    encoding="utf-8")
    assert main(["create", str(tmp_path / "p"), str(folder), "--tags", str(tags)]) == 0
    capsys.readouterr()
    return tmp_path / "p"


def _error(capsys, argv: list[str], code: int = 1) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weaksam: error:"), err
    return lines[0]


def _tags(root: Path) -> dict[str, set[str]]:
    with Project.open(root, read_only=True) as project:
        names = {c.id: c.name for c in project.catalog.classes()}
        items = {i.id: i.name for i in project.catalog.items()}
        return {items[i]: {names[c] for c in cs} for i, cs in project.catalog.all_tags().items()}


@pytest.mark.parametrize("target", ["catalog.sqlite", "project.json", "arrays", "new.csv"])
def test_export_tags_refuses_to_write_inside_the_project(tagged, capsys, target):
    before = Saved.read(tagged)
    line = _error(capsys, ["export-tags", str(tagged), str(tagged / target)])
    assert "inside the project" in line
    assert_intact(tagged, before)
    assert not (tagged / "new.csv").exists()


def test_export_tags_refuses_an_existing_file_a_folder_and_a_device(tagged, tmp_path, capsys):
    existing = tmp_path / "old.csv"
    existing.write_text("keep me", encoding="utf-8")
    assert "already exists" in _error(capsys, ["export-tags", str(tagged), str(existing)])
    assert existing.read_text(encoding="utf-8") == "keep me"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for target in (folder, Path("/dev/null")):
        line = _error(capsys, ["export-tags", str(tagged), str(target), "--overwrite"])
        assert "not a regular file" in line
    assert folder.is_dir() and not list(folder.iterdir())
    assert main(["export-tags", str(tagged), str(existing), "--overwrite"]) == 0
    assert existing.read_text(encoding="utf-8").startswith("item,filename")
    assert not list(tmp_path.glob(".*.partial"))


def test_a_binary_import_for_one_class_keeps_the_other_classes(tagged, tmp_path, capsys):
    csv = tmp_path / "polyp.csv"
    csv.write_text("filename,label\nimg0.png,1\nimg1.png,0\nimg3.png,0\n", encoding="utf-8")
    assert main(["import-tags", str(tagged), str(csv), "--class", "polyp"]) == 0
    assert _tags(tagged) == {"img0": {"tumour", "polyp"}, "img1": set(), "img2": {"tumour"},
                             "img3": set()}


def test_a_wide_import_keeps_classes_it_does_not_name(tagged, tmp_path, capsys):
    csv = tmp_path / "wide.csv"
    csv.write_text("item,filename,slice_index,tagged,polyp\nimg0,img0.png,,1,1\n",
                   encoding="utf-8")
    assert main(["import-tags", str(tagged), str(csv)]) == 0
    assert _tags(tagged)["img0"] == {"tumour", "polyp"}


def test_an_unknown_class_column_without_positives_creates_no_class(tagged, tmp_path, capsys):
    csv = tmp_path / "wide.csv"
    csv.write_text("item,filename,slice_index,tagged,tumour,mitosis\nimg3,img3.png,,1,1,0\n",
                   encoding="utf-8")
    assert main(["import-tags", str(tagged), str(csv)]) == 0
    assert "'mitosis': no item has this class" in capsys.readouterr().out
    with Project.open(tagged, read_only=True) as project:
        assert [c.name for c in project.catalog.classes()] == ["tumour", "polyp"]


def test_a_class_can_be_removed_and_its_label_value_is_not_reused(tagged, capsys):
    assert "1 items are tagged" in _error(capsys, ["classes", str(tagged), "--remove", "polyp"])
    assert main(["classes", str(tagged), "--remove", "polyp", "--force"]) == 0
    assert "removed (1 tags" in capsys.readouterr().out
    with Project.open(tagged) as project:
        assert [c.name for c in project.catalog.classes()] == ["tumour"]
        assert project.catalog.add_class("mitosis").label_value == 3
    assert "no class named 'nope'" in _error(capsys, ["classes", str(tagged), "--remove", "nope"])


def test_export_into_the_project_is_refused(tagged, capsys):
    with Project.open(tagged) as project:
        item = project.catalog.items()[0]
        project.labels.add_proposal(item.id, np.ones((12, 10), np.uint8), method="manual")
        project.labels.review(item.id, "accepted")
    before = Saved.read(tagged)
    for dest in (tagged, tagged / "images", tagged / "exports"):
        line = _error(capsys, ["export", str(tagged), str(dest), "--overwrite"])
        assert "inside the project" in line
    assert not (tagged / "exports").exists()
    assert_intact(tagged, before)


def test_a_source_that_changed_since_import_is_refused_by_name(tmp_path, capsys):
    folder = tmp_path / "imgs"
    source = _png(folder / "a.png", 10)
    assert main(["create", str(tmp_path / "p"), str(folder), "--copy"]) == 0
    copy = tmp_path / "p" / "images" / "a.png"
    _png(copy, 200)  # the file in the project is replaced behind its back
    capsys.readouterr()
    with Project.open(tmp_path / "p", read_only=True) as project, pytest.raises(
            Exception, match="changed since it was imported"):
        project.item_image(project.catalog.items()[0])
    assert source.exists()


def test_copies_stay_inside_the_project_for_dotdot_inputs(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    _png(tmp_path / "x.png", 5)
    _png(tmp_path / "sub" / "y.png", 6)
    monkeypatch.chdir(work)
    assert main(["create", "p", "../x.png", "../sub/../sub/y.png", "--copy"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "work", "x.png"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["y.png"]
    with Project.open(work / "p", read_only=True) as project:
        for source in project.catalog.sources():
            assert source.relpath.startswith("images/") and ".." not in source.relpath
            assert ".." not in source.path
            assert (work / "p" / source.relpath).is_file()


def test_a_dataset_root_does_not_import_its_masks_folder(tmp_path, capsys):
    _png(tmp_path / "set" / "images" / "a.png", 10)
    _png(tmp_path / "set" / "masks" / "a.png", 1)
    _png(tmp_path / "set" / "masks_tumour" / "a.png", 1)
    assert main(["create", str(tmp_path / "p"), str(tmp_path / "set")]) == 0
    out = capsys.readouterr().out
    assert "1 files imported" in out and "ground-truth folder" in out
    with Project.open(tmp_path / "p", read_only=True) as project:
        assert [i.name for i in project.catalog.items()] == ["a"]


def test_evaluate_refuses_masks_that_are_items_of_the_project(tmp_path, capsys):
    _png(tmp_path / "set" / "masks" / "a.png", 1)
    assert main(["create", str(tmp_path / "p"), str(tmp_path / "set" / "masks")]) == 0
    capsys.readouterr()
    line = _error(capsys, ["evaluate", str(tmp_path / "p"), str(tmp_path / "set" / "masks")])
    assert "scored against itself" in line


@pytest.mark.parametrize("option", ["--csv", "--plot"])
def test_evaluate_outputs_are_refused_inside_the_project(tagged, tmp_path, capsys, option):
    _png(tmp_path / "truth" / "img0.png", 1)
    before = Saved.read(tagged)
    line = _error(capsys, ["evaluate", str(tagged), str(tmp_path / "truth"), option,
                           str(tagged / "catalog.sqlite")])
    assert "inside the project" in line
    assert_intact(tagged, before)
