"""The method registry: a method registered here appears in the CLI (its flags, its run) and in
its settings round trip; unknown and duplicate names are refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import imageio.v3 as iio
import numpy as np
import pytest

from napari_weaksam.cli import _parser, main
from napari_weaksam.method_settings import BOOL
from napari_weaksam.methods.context import RunContext
from napari_weaksam.methods.registry import (
    Method,
    all_methods,
    get_method,
    method_of,
    register,
    unregister,
)
from napari_weaksam.option_ranges import check_options, option
from napari_weaksam.project import Project


@dataclass
class BrightSettings:
    """A toy method: every pixel brighter than a share of the image's maximum."""

    level: float = option(0.5, low=0, high=1, help="share of the image's maximum")
    invert: bool = option(False, choices=BOOL, help="take the darker pixels instead")

    def __post_init__(self) -> None:
        check_options(self)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BrightReport:
    round_id: int

    def summary(self) -> str:
        return f"bright: round {self.round_id}"


def run_bright(context: RunContext, settings: BrightSettings) -> BrightReport:
    project = context.project
    round_id = project.rounds.start_round("bright", settings.to_dict())
    items = project.catalog.items()
    for done, item in enumerate(items):
        context.check_cancel()
        image = np.asarray(project.item_image(item), dtype=np.float32)
        mask = image > settings.level * image.max()
        mask = ~mask if settings.invert else mask
        project.labels.add_proposal(item.id, mask.astype(np.uint8), method="bright",
                                    round_id=round_id, params=settings.to_dict(),
                                    confidence=1.0)
        context.report("pseudo-labels", done + 1, len(items))
    project.rounds.finish_round(round_id, "done")
    return BrightReport(round_id)


BRIGHT = Method(name="bright", title="Bright", summary="Pixels above a level.",
                settings_type=BrightSettings, runner=run_bright, dock_options=("level",))


@pytest.fixture
def bright():
    register(BRIGHT)
    yield BRIGHT
    unregister("bright")


@pytest.fixture
def project_root(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        image = np.zeros((16, 12), np.uint8)
        image[4:10, 3:8] = 200 + i
        iio.imwrite(images / f"img{i}.png", image)
    tags = tmp_path / "tags.csv"
    tags.write_text("filename,label\nimg0.png,1\nimg1.png,1\n", encoding="utf-8")
    root = tmp_path / "p"
    assert main(["create", str(root), str(images), "--tags", str(tags)]) == 0
    return root


def test_a_registered_method_has_its_flags_and_runs_from_the_cli(bright, project_root,
                                                                  capsys):
    assert "bright" in _parser().parse_args(["run", "x", "--method", "bright"]).method
    help_text = _parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "--level" in help_text and "share of the image's maximum" in help_text
    assert main(["run", str(project_root), "--method", "bright", "--level", "0.9",
                 "--invert"]) == 0
    assert "bright: round" in capsys.readouterr().out
    with Project.open(project_root, read_only=True) as project:
        (round_,) = project.rounds.rounds()
        assert round_.params == {"level": 0.9, "invert": True}
        for item in project.catalog.items():
            mask = project.labels.proposal_mask(project.labels.latest_proposal(item.id))
            assert mask.sum() == 16 * 12 - 6 * 5   # the darker pixels: all but the square


def test_a_registered_methods_flags_are_refused_for_other_methods(bright, tmp_path, capsys):
    assert main(["run", str(tmp_path), "--method", "weakmedsam", "--level", "0.2"]) == 2
    assert "--level: not an option of weakmedsam" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--method", "bright", "--level", "2"]) == 2
    assert "level = 2.0 is out of range" in capsys.readouterr().err


def test_builtin_methods_are_registered_with_their_settings():
    names = [method.name for method in all_methods()]
    assert names[:2] == ["epsam", "weakmedsam"]
    for method in all_methods():
        assert method_of(method.settings()) is method
        assert set(method.dock_options) <= set(method.options())


def test_unknown_and_duplicate_names_are_refused(bright):
    with pytest.raises(ValueError, match="no method called 'nope': use one of epsam"):
        get_method("nope")
    with pytest.raises(ValueError, match="registered already"):
        register(Method(name="bright", title="Other", summary="", settings_type=BrightSettings,
                        runner=run_bright))
    register(BRIGHT)   # the same method again is fine
