"""A method's options as form fields, made by magicgui from its settings dataclass.

Each field allows what the option's declared range allows (a spin box's bounds, a combo box's
choices) and says its help as a tooltip; :meth:`OptionFields.values` gives only what differs from
the method's defaults, so an untouched field never overrides a default (some flags set several
options, each with its own default). The defaults may change with the project's kind of image
(:meth:`OptionFields.set_defaults`); what the person set stays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from magicgui.widgets import Container, Widget, create_widget

from ..option_ranges import OptionRange
from ..settings_fields import SettingsOption

SPIN_LIMITS = (-(2**31), 2**31 - 1)
FLOAT_LIMITS = (-1e9, 1e9)


class OptionFields(Container):
    """One labelled field per flag (``options``: flag → the options it sets)."""

    def __init__(self, options: Mapping[str, list[SettingsOption]], flags: Sequence[str]) -> None:
        self.base_defaults = {flag: options[flag][0].default for flag in flags}
        self.defaults = dict(self.base_defaults)
        fields = [_field(flag, options[flag][0]) for flag in flags]
        super().__init__(widgets=fields, labels=True)
        self.margins = (0, 0, 0, 0)
        self._set: dict[str, Any] = {}   # flag → what the person set (whatever the defaults)
        self._showing = False
        for flag in flags:
            self.field(flag).changed.connect(lambda value, flag=flag: self._edited(flag, value))

    def field(self, flag: str) -> Widget:
        return self[_name(flag)]

    def values(self) -> dict[str, Any]:
        """Flag → value of every field changed from its default."""
        changed = {flag: self.field(flag).value for flag in self.defaults}
        return {flag: value for flag, value in changed.items() if value != self.defaults[flag]}

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Show ``values`` (flag → value; the others show their defaults); a value a field
        cannot hold (an older, wider range) is left at the default."""
        self._set = {flag: value for flag, value in values.items() if flag in self.defaults}
        self._show()

    def set_defaults(self, overrides: Mapping[str, Any]) -> None:
        """Defaults ``overrides`` (flag → value) over the settings' own; fields the person set
        keep their values."""
        self.defaults = {flag: overrides.get(flag, default)
                         for flag, default in self.base_defaults.items()}
        self._show()

    def _edited(self, flag: str, value: Any) -> None:
        if not self._showing:   # the person's edit, not a default shown
            self._set[flag] = value

    def _show(self) -> None:
        self._showing = True
        try:
            for flag, default in self.defaults.items():
                widget = self.field(flag)
                try:
                    widget.value = self._set.get(flag, default)
                except (ValueError, TypeError):
                    widget.value = default
        finally:
            self._showing = False


def _field(flag: str, option: SettingsOption) -> Widget:
    bounds = option.bounds
    label = bounds.label or flag.replace("-", " ").capitalize()
    settings: dict[str, Any] = {}
    if bounds.choices and not option.is_switch:
        settings["choices"] = list(bounds.choices)
    elif option.kind is int:
        settings["min"], settings["max"] = whole_range(bounds)
    elif option.kind is float:
        settings["min"], settings["max"] = _float_range(bounds)
        settings["step"] = _float_step(option.default)
    widget = create_widget(value=option.default, annotation=option.kind, name=_name(flag),
                           label=label, options=settings)
    widget.tooltip = f"{bounds.help} (--{flag}; {bounds.describe()})"
    return widget


def whole_range(bounds: OptionRange | None) -> tuple[int, int]:
    """The whole numbers ``bounds`` allows (within a spin box's limits)."""
    low, high = SPIN_LIMITS
    if bounds is None or bounds.choices:
        return low, high
    if bounds.low is not None:
        low = math.floor(bounds.low) + 1 if bounds.low_open else math.ceil(bounds.low)
    if bounds.high is not None:
        high = math.ceil(bounds.high) - 1 if bounds.high_open else math.floor(bounds.high)
    return max(low, SPIN_LIMITS[0]), min(high, SPIN_LIMITS[1])


def _float_range(bounds: OptionRange) -> tuple[float, float]:
    low = FLOAT_LIMITS[0] if bounds.low is None else bounds.low
    high = FLOAT_LIMITS[1] if bounds.high is None else bounds.high
    return low, high


def _float_step(default: float) -> float:
    """A step of about a tenth of the default's magnitude (0.1 for 0)."""
    return 10 ** math.floor(math.log10(abs(default))) / 10 if default else 0.1


def _name(flag: str) -> str:
    return flag.replace("-", "_")
