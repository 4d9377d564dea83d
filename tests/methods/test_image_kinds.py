"""A project's kind of image, and the defaults each method takes for it: counted from the items'
channels, the kind's method and option values, a flag the person gives over them, and the CLI's
line saying what the kind changed."""

from __future__ import annotations

import pytest

from napari_weaksam.cli import _choose_for_kind, _parser
from napari_weaksam.methods.image_kinds import (
    COLOUR,
    GREY,
    KindDefault,
    ProjectKind,
    kind_of_channels,
    project_kind,
)
from napari_weaksam.methods.registry import (
    Method,
    get_method,
    method_for_kind,
    register,
    unregister,
)
from napari_weaksam.project import Project
from napari_weaksam.project.importer import import_images
from napari_weaksam.sample import make_sample_project, sample_dir


def colour_project(root) -> Project:
    """The sample's eight H&E patches alone."""
    project = Project.create(root)
    import_images(project, sorted((sample_dir() / "images").glob("*.png")), copy=True)
    return project


def test_channels_decide_the_kind():
    assert [kind_of_channels(c) for c in (1, 2, 3, 4)] == [GREY, GREY, COLOUR, COLOUR]


def test_the_kind_is_that_of_most_items(tmp_path):
    with Project.open(make_sample_project(tmp_path / "sample")) as project:
        kind = project_kind(project)      # 25 MR slices of brain1.nii.gz, 8 H&E patches
    assert kind == ProjectKind(GREY, 25, 8)
    assert kind.describe() == ("mixed: 25 grey and 8 colour items; the defaults of grey images "
                               "(MR/CT), which most are")
    assert kind.short() == "mostly grey images (MR/CT), 25 of 33"
    with colour_project(tmp_path / "colour") as project:
        kind = project_kind(project)
    assert kind == ProjectKind(COLOUR, 0, 8)
    assert (kind.describe(), kind.short()) == ("colour images (H&E), 8 items",
                                               "colour images (H&E)")
    assert ProjectKind(GREY, 4, 4).kind == GREY        # as project_kind breaks a tie
    with Project.create(tmp_path / "empty") as project:
        assert project_kind(project) is None


def test_each_kind_has_the_method_and_values_measured_best_for_it():
    assert method_for_kind(GREY).name == "weakmedsam"
    assert method_for_kind(COLOUR).name == "epsam"
    epsam, weakmedsam = get_method("epsam"), get_method("weakmedsam")
    assert epsam.settings_for(GREY, {}).cam_source == "weakmedsam"   # ADL: Dice 0.10 on MR
    assert epsam.settings_for(COLOUR, {}).cam_source == "adl"
    assert epsam.settings_for(None, {}).cam_source == "adl"          # no items: the dataclass's
    assert weakmedsam.settings_for(COLOUR, {}).cam_input == "embedding"
    assert weakmedsam.settings_for(GREY, {}).cam_input == "image"
    assert get_method("segnet").settings_for(GREY, {}).prompts == "boxes+mask"
    assert get_method("segnet").settings_for(COLOUR, {}).prompts == "none"


def test_what_the_person_sets_wins_over_the_kind():
    epsam = get_method("epsam")
    assert epsam.settings_for(GREY, {"cam-source": "adl"}).cam_source == "adl"
    assert epsam.kind_note(GREY).startswith("cam-source weakmedsam (ADL's CAM covers")
    assert epsam.kind_note(GREY, why=False) == "cam-source weakmedsam"
    assert epsam.kind_note(GREY, {"cam-source": "adl"}) == ""
    assert get_method("sammix").kind_note(GREY, why=False) == "its GradCAM covered the whole brain"
    assert epsam.kind_note(COLOUR) == ""


def test_a_kind_default_is_checked_when_its_method_registers():
    base = get_method("weakmedsam")
    typo = Method(name="typo", title="Typo", summary="", settings_type=base.settings_type,
                  runner=base.runner, kind_defaults={GREY: {"cam-inptu": KindDefault(1, "")}})
    with pytest.raises(ValueError, match="--cam-inptu: not an option of typo"):
        register(typo)
    unknown = Method(name="unknown", title="Unknown", summary="",
                     settings_type=base.settings_type, runner=base.runner,
                     kind_defaults={"ultrasound": {"cam-input": KindDefault("image", "")}})
    with pytest.raises(ValueError, match="'ultrasound' is not an image kind"):
        register(unknown)
    unregister("typo")
    unregister("unknown")


def test_the_cli_picks_the_kinds_method_and_says_what_it_changes(tmp_path, capsys):
    root = make_sample_project(tmp_path / "sample")
    with Project.open(root) as project:
        args = _parser().parse_args(["run", str(root)])
        assert _choose_for_kind(args, project) == GREY
        assert args.method == "weakmedsam"
        assert capsys.readouterr().out.startswith("mixed: 25 grey and 8 colour items; the "
                                                  "defaults of grey images (MR/CT), which most "
                                                  "are: WeakMedSAM (--method to choose another)")
        args = _parser().parse_args(["run", str(root), "--method", "epsam"])
        _choose_for_kind(args, project)
        assert capsys.readouterr().out.startswith(
            "For grey images (MR/CT): cam-source weakmedsam (ADL's CAM covers the whole brain")
        args = _parser().parse_args(["run", str(root), "--method", "epsam", "--cam-source",
                                     "adl"])
        _choose_for_kind(args, project)
        assert capsys.readouterr().out == ""          # the person chose: nothing to say
