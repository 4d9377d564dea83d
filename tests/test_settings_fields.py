"""Settings dataclasses as options: flags, building with values, and the provenance round trip
(dataclass → CLI → stored with a round → dataclass)."""

from __future__ import annotations

import pytest

from napari_weaksam.cli import _parser, method_settings_from
from napari_weaksam.method_settings import EpSamSettings, WeakMedSamSettings
from napari_weaksam.methods.registry import get_method
from napari_weaksam.option_ranges import OptionError, nested
from napari_weaksam.project import Project
from napari_weaksam.settings_fields import (
    option_values,
    settings_from_params,
    settings_options,
    settings_with,
)

# flags with values other than the defaults, per method
GIVEN = {
    "epsam": ["--rounds", "1", "--decoder-epochs", "2", "--ids", "0.8", "--points", "7",
              "--seed", "5", "--epochs", "3", "--prompts", "boxes", "--zero-shot", "--no-maps"],
    "weakmedsam": ["--ensemble", "1", "--threshold", "0.4", "--epochs", "9", "--seed", "3",
                   "--affinity-prompts", "points", "--no-maps"],
}


def test_nested_options_have_dotted_keys_and_their_flags():
    flags = {option.key: option.cli_flag() for option in settings_options(EpSamSettings)}
    assert flags["engine.decoder.epochs"] == "--decoder-epochs"
    assert flags["engine.ids_threshold"] == "--ids"
    assert flags["engine.rounds"] == "--rounds"
    assert flags["zero_shot"] == "--zero-shot" and flags["save_maps"] == "--no-maps"
    assert "engine.decoder.losses" not in flags          # not an option


def test_a_stage_field_its_owner_does_not_use_is_not_an_option_of_the_owner():
    keys = {option.key for option in settings_options(EpSamSettings)}
    assert "embedding_classifier.threshold" in keys
    assert "embedding_classifier.mask_prompts" not in keys    # EP-SAM starts from the walk
    assert "mask_prompts" in {o.key for o in settings_options(WeakMedSamSettings)}
    with pytest.raises(KeyError, match="mask_prompts"):
        settings_with(EpSamSettings, {"embedding_classifier.mask_prompts": "none"})
    with pytest.raises(ValueError, match="has no field nope"):
        nested(WeakMedSamSettings, exclude=("nope",))


def test_settings_with_builds_every_stage_and_checks_each():
    settings = settings_with(EpSamSettings, {"engine.decoder.epochs": 9, "quantile": 0.5})
    assert settings.engine.decoder.epochs == 9 and settings.quantile == 0.5
    assert settings.engine.rounds == EpSamSettings().engine.rounds
    with pytest.raises(OptionError, match="epochs = 0"):
        settings_with(EpSamSettings, {"engine.decoder.epochs": 0})
    with pytest.raises(KeyError, match="no option engine.nope"):
        settings_with(EpSamSettings, {"engine.nope": 1})


def test_a_shared_flag_sets_every_option_it_names():
    settings = get_method("epsam").settings_from_flags({"seed": 4})
    assert (settings.classifier.seed, settings.engine.seed, settings.engine.decoder.seed,
            settings.embedding_classifier.seed) == (4, 4, 4, 4)


@pytest.mark.parametrize("name", sorted(GIVEN))
def test_settings_round_trip_through_the_cli_and_a_stored_round(name, tmp_path):
    args = _parser().parse_args(["run", str(tmp_path / "p"), "--method", name, *GIVEN[name]])
    settings = method_settings_from(args)
    assert settings != get_method(name).settings_type()     # the flags changed something
    with Project.create(tmp_path / "p") as project:
        round_id = project.rounds.start_round(name, settings.to_dict() | {"stage": "x"})
        project.rounds.finish_round(round_id, "done")
    with Project.open(tmp_path / "p", read_only=True) as project:
        stored = project.rounds.rounds()[-1].params               # read back from JSON
    rebuilt = settings_from_params(type(settings), stored)
    assert rebuilt.to_dict() == settings.to_dict()
    provenance = settings.to_dict()
    for key, value in option_values(rebuilt).items():
        head = key.split(".")[0]
        if head in provenance:          # a branch the method does not use is not stored
            assert option_values(settings)[key] == value, key


def test_a_tuple_comes_back_as_a_tuple():
    rebuilt = settings_from_params(WeakMedSamSettings, {"box_scales": [0.5, 1.0]})
    assert rebuilt.box_scales == (0.5, 1.0)
