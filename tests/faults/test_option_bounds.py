"""Every numeric option of every method's ``weaksam run`` flags at and beyond its bounds: refused
in one line, before any model loads or any project is opened; values at a bound are accepted."""

from __future__ import annotations

import pytest

from napari_weaksam.cli import main
from napari_weaksam.methods.registry import all_methods, get_method
from napari_weaksam.option_ranges import OptionError

# (method, flag, the names of the fields the flag sets, bounds, kind)
_NUMERIC = [(method.name, flag, {o.path[-1] for o in options}, options[0].bounds,
             options[0].kind)
            for method in all_methods() for flag, options in method.options().items()
            if not options[0].bounds.choices]


def _beyond(bounds) -> list[float]:
    values = []
    if bounds.low is not None:
        values.append(bounds.low if bounds.low_open else bounds.low - 1)
    if bounds.high is not None:
        values.append(bounds.high if bounds.high_open else bounds.high + 1)
    return values


def _format(value: float, kind: type) -> str:
    return str(int(value)) if kind is int else repr(float(value))


_CASES = [(method, flag, names, kind, value) for method, flag, names, bounds, kind in _NUMERIC
          for value in _beyond(bounds)]


def test_every_method_has_numeric_options_checked_here():
    assert {case[0] for case in _CASES} >= {"epsam", "weakmedsam", "sammix", "retrain"}
    assert {"--rounds", "--epochs", "--threshold"} <= {"--" + case[1] for case in _CASES}


@pytest.mark.parametrize(("method", "flag", "names", "kind", "value"), _CASES,
                         ids=[f"{c[0]}--{c[1]}={c[4]}" for c in _CASES])
def test_out_of_range_values_are_refused_in_one_line(tmp_path, capsys, method, flag, names,
                                                     kind, value):
    missing = tmp_path / "no-project-needed"
    command = ["run", str(missing), "--method", method] if get_method(method).listed else \
        [method, str(missing)]   # retrain: a command of its own
    assert main([*command, f"--{flag}", _format(value, kind)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert any(err[0].startswith(f"weaksam: error: {name} = ") for name in names), err
    assert "out of range" in err[0] and "use" in err[0]


@pytest.mark.parametrize(("method", "flag", "names", "bounds", "kind"), _NUMERIC,
                         ids=[f"{c[0]}--{c[1]}" for c in _NUMERIC])
def test_values_at_the_bounds_are_accepted(method, flag, names, bounds, kind):
    from napari_weaksam.methods.registry import get_method

    for value in (bounds.low, bounds.high):
        if value is None:
            continue
        if (value == bounds.low and bounds.low_open) or (value == bounds.high and bounds.high_open):
            value = value + (1e-3 if value == bounds.low else -1e-3)
        if kind is int and value != int(value):
            continue
        get_method(method).settings_from_flags({flag: kind(value)})


def test_a_flag_of_another_method_is_refused_by_name(tmp_path, capsys):
    assert main(["run", str(tmp_path), "--method", "weakmedsam", "--rounds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["weaksam: error: --rounds: not an option of weakmedsam"]


@pytest.mark.parametrize("value", ["0", "-5"])
def test_epsam_classifier_epochs_below_one_are_refused(tmp_path, capsys, value):
    assert main(["run", str(tmp_path), "--method", "epsam", "--epochs", value]) == 2
    assert "epochs = " in capsys.readouterr().err


def test_nan_and_non_numbers_are_refused():
    from napari_weaksam.methods.weakmedsam import WeakMedSamSettings

    for bad in (float("nan"), "0.5", None, True):
        with pytest.raises(OptionError, match="threshold"):
            WeakMedSamSettings(threshold=bad)


def test_an_unknown_device_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", str(tmp_path), "--device", "bogus"])
    assert stop.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_embed_negative_batch_size_is_refused(tmp_path, capsys):
    assert main(["embed", str(tmp_path), "--batch-size", "-1"]) == 2
    assert "batch_size = -1" in capsys.readouterr().err
