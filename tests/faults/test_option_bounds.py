"""Every numeric option of ``weaksam run`` at and beyond its bounds: refused in one line, before
any model loads or any project is opened; values at a bound are accepted."""

from __future__ import annotations

import dataclasses

import pytest

from napari_weaksam.cli import _method_option_table, main
from napari_weaksam.option_ranges import OptionError, option_range

_NUMERIC = [(flag, cls, name, option_range(cls, name)) for flag, cls, name, _ in
            _method_option_table() if not option_range(cls, name).choices]


def _beyond(bounds) -> list[float]:
    values = []
    if bounds.low is not None:
        values.append(bounds.low if bounds.low_open else bounds.low - 1)
    if bounds.high is not None:
        values.append(bounds.high if bounds.high_open else bounds.high + 1)
    return values


def _format(value: float, kind: type) -> str:
    return str(int(value)) if kind is int else repr(float(value))


_CASES = [(flag, cls, name, value) for flag, cls, name, bounds in _NUMERIC
          for value in _beyond(bounds)]


@pytest.mark.parametrize(("flag", "cls", "name", "value"), _CASES,
                         ids=[f"{c[0]}={c[3]}" for c in _CASES])
def test_out_of_range_values_are_refused_in_one_line(tmp_path, capsys, flag, cls, name, value):
    kind = type({f.name: f.default for f in dataclasses.fields(cls)}[name])
    method = "epsam" if flag not in ("--subclasses", "--ensemble", "--threshold") else "weakmedsam"
    missing = tmp_path / "no-project-needed"
    assert main(["run", str(missing), "--method", method, flag, _format(value, kind)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"weaksam: error: {name} = "), err
    assert "out of range" in err[0] and "use" in err[0]


@pytest.mark.parametrize(("flag", "cls", "name", "bounds"), _NUMERIC,
                         ids=[c[0] for c in _NUMERIC])
def test_values_at_the_bounds_are_accepted(flag, cls, name, bounds):
    kind = type({f.name: f.default for f in dataclasses.fields(cls)}[name])
    for value in (bounds.low, bounds.high):
        if value is None:
            continue
        if (value == bounds.low and bounds.low_open) or (value == bounds.high and bounds.high_open):
            value = value + (1e-3 if value == bounds.low else -1e-3)
        cls(**{name: kind(value)})


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


def test_embed_batch_size_zero_is_refused(tmp_path, capsys):
    assert main(["embed", str(tmp_path), "--batch-size", "0"]) == 2
    assert "batch_size = 0" in capsys.readouterr().err
