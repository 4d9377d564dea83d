"""A project's kind of image, and the defaults each method takes for it: radiology or stained
tissue (one-channel items, and colour items by their brightness), the kind's method and option
values, a flag the person gives over them, and the CLI's line saying what the kind changed."""

from __future__ import annotations

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from napari_weaksam.cli import _choose_for_kind, _parser
from napari_weaksam.methods.image_kinds import (
    RADIOLOGY,
    STAINED,
    KindDefault,
    ProjectKind,
    looks_stained,
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


def stained_project(root) -> Project:
    """The sample's eight H&E patches alone."""
    project = Project.create(root)
    import_images(project, sorted((sample_dir() / "images").glob("*.png")), copy=True)
    return project


def test_bright_colour_images_are_stained_tissue_dark_ones_radiology():
    """An H&E patch of the sample is bright; MR sequences stored as RGB (as lgg_mri_dev's) are
    dark outside the head; a grey image is never stained tissue, whatever its brightness."""
    patch = iio.imread(sample_dir() / "images" / "normal_GT2000000-1-400-001.png")
    assert looks_stained(patch)
    slices = nib.load(sample_dir() / "images" / "brain1.nii.gz").get_fdata()
    plane = slices[..., 12] / slices.max()
    sequences_as_rgb = (np.stack([plane, plane ** 2, np.sqrt(plane)], -1) * 255).astype(np.uint8)
    assert not looks_stained(sequences_as_rgb)
    assert not looks_stained(np.full((64, 64), 250, np.uint8))
    assert looks_stained(np.full((64, 64, 4), 0.8, np.float32))      # RGBA, floats in [0, 1]


def test_the_kind_is_that_of_most_items(tmp_path):
    with Project.open(make_sample_project(tmp_path / "sample")) as project:
        kind = project_kind(project)      # 25 MR slices of brain1.nii.gz, 8 H&E patches
    assert kind == ProjectKind(RADIOLOGY, 25, 8)
    assert kind.describe() == ("mixed: 25 radiology and 8 stained-tissue items; the defaults "
                               "of radiology images (MR/CT), which most are")
    assert kind.short() == "mostly radiology images (MR/CT), 25 of 33"
    with stained_project(tmp_path / "stained") as project:
        kind = project_kind(project)
    assert kind == ProjectKind(STAINED, 0, 8)
    assert (kind.describe(), kind.short()) == ("stained tissue (H&E), 8 items",
                                               "stained tissue (H&E)")
    assert ProjectKind(RADIOLOGY, 4, 4).kind == RADIOLOGY        # as project_kind breaks a tie
    with Project.create(tmp_path / "empty") as project:
        assert project_kind(project) is None


def test_each_kind_has_the_method_and_values_measured_best_for_it():
    assert method_for_kind(RADIOLOGY).name == "weakmedsam"
    assert method_for_kind(STAINED).name == "epsam"
    epsam, weakmedsam = get_method("epsam"), get_method("weakmedsam")
    assert epsam.settings_for(RADIOLOGY, {}).cam_source == "weakmedsam"   # ADL: Dice 0.10 on MR
    assert epsam.settings_for(STAINED, {}).cam_source == "adl"
    assert epsam.settings_for(None, {}).cam_source == "adl"          # no items: the dataclass's
    assert weakmedsam.settings_for(STAINED, {}).cam_input == "embedding"
    assert weakmedsam.settings_for(RADIOLOGY, {}).cam_input == "image"
    assert get_method("segnet").settings_for(RADIOLOGY, {}).prompts == "boxes+mask"
    assert get_method("segnet").settings_for(STAINED, {}).prompts == "none"
    sammix = get_method("sammix")   # ResNet-18's GradCAM: CAM Dice 0.11 on MR, 0.72 on H&E
    assert sammix.settings_for(RADIOLOGY, {}).classifier.trunk == "local"
    assert sammix.settings_for(RADIOLOGY, {}).classifier.cam_views == 8
    assert sammix.settings_for(STAINED, {}).classifier.cam_views == 1
    assert sammix.settings_for(STAINED, {}).classifier.trunk == "resnet18"
    retrain = get_method("retrain")   # H&E: the head's own mask, 0.825 vs 0.791 over EP-SAM
    assert retrain.settings_for(STAINED, {}).prompts == "none"
    assert retrain.settings_for(RADIOLOGY, {}).prompts == "boxes+mask"


def test_what_the_person_sets_wins_over_the_kind():
    epsam = get_method("epsam")
    assert epsam.settings_for(RADIOLOGY, {"cam-source": "adl"}).cam_source == "adl"
    assert epsam.kind_note(RADIOLOGY).startswith("cam-source weakmedsam (ADL's CAM covers")
    assert epsam.kind_note(RADIOLOGY, why=False) == "cam-source weakmedsam"
    assert epsam.kind_note(RADIOLOGY, {"cam-source": "adl"}) == ""
    sammix = get_method("sammix")
    assert sammix.kind_note(RADIOLOGY, why=False) == (
        "trunk local; cam-views 8; from the tags alone it is below WeakMedSAM")
    assert sammix.kind_note(RADIOLOGY, {"trunk": "resnet18", "cam-views": 1}, why=False) == (
        "from the tags alone it is below WeakMedSAM")
    assert epsam.kind_note(STAINED) == ""


def test_a_kind_default_is_checked_when_its_method_registers():
    base = get_method("weakmedsam")
    typo = Method(name="typo", title="Typo", summary="", settings_type=base.settings_type,
                  runner=base.runner, kind_defaults={RADIOLOGY: {"cam-inptu": KindDefault(1, "")}})
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
        assert _choose_for_kind(args, project) == RADIOLOGY
        assert args.method == "weakmedsam"
        assert capsys.readouterr().out.startswith(
            "mixed: 25 radiology and 8 stained-tissue items; the defaults of radiology images "
            "(MR/CT), which most are: WeakMedSAM (--method to choose another)")
        args = _parser().parse_args(["run", str(root), "--method", "epsam"])
        _choose_for_kind(args, project)
        assert capsys.readouterr().out.startswith(
            "For radiology images (MR/CT): cam-source weakmedsam (ADL's CAM covers the whole "
            "brain")
        args = _parser().parse_args(["run", str(root), "--method", "epsam", "--cam-source",
                                     "adl"])
        _choose_for_kind(args, project)
        assert capsys.readouterr().out == ""          # the person chose: nothing to say
