"""An option's range and help, declared once beside its settings field, checked in one place.

A settings dataclass declares each bounded option with :func:`option` and calls
:func:`check_options` in ``__post_init__``; the CLI and the Train dock build the dataclass and
show :class:`OptionError`'s one-line message as it is, so both say the same thing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

RANGE_KEY = "option_range"
FLAG_KEY = "option_flag"        # the CLI flag of an option, when not its field's name
PREFIX_KEY = "option_prefix"    # the flag prefix of a nested settings dataclass's options
EXCLUDE_KEY = "option_exclude"  # a nested dataclass's fields that are not options of its owner


class OptionError(ValueError):
    """An option's value is outside its range (the message names the option and the range)."""


@dataclass(frozen=True)
class OptionRange:
    """Allowed values: ``low``..``high`` (either bound may be open or absent), or ``choices``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    help: str = ""
    label: str = ""   # a short name for a form field (the help is its tooltip)

    def allows(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None
                    and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        low = None if self.low is None else f"{'>' if self.low_open else '≥'} {self.low:g}"
        high = None if self.high is None else f"{'<' if self.high_open else '≤'} {self.high:g}"
        return " and ".join(part for part in (low, high) if part) or "any number"


def option(default: Any = dataclasses.MISSING, *, low: float | None = None,
           high: float | None = None, low_open: bool = False, high_open: bool = False,
           choices: tuple[Any, ...] = (), help: str = "", flag: str | None = None,
           label: str = "") -> Any:
    """A dataclass field with a range (see :class:`OptionRange`) and a help text; ``flag``
    names its CLI option when the field's name would not do (e.g. ``ids`` for
    ``ids_threshold``); ``label`` names its field in the Train dock (default: the flag's words).
    A bool option is declared with ``choices=(False, True)``."""
    bounds = OptionRange(low, high, low_open, high_open, tuple(choices), help, label)
    metadata: dict[str, Any] = {RANGE_KEY: bounds}
    if flag is not None:
        metadata[FLAG_KEY] = flag
    return dataclasses.field(default=default, metadata=metadata)


def nested(settings_type: type, *, prefix: str = "", exclude: tuple[str, ...] = ()) -> Any:
    """A field holding a stage's settings dataclass (its defaults); its options' CLI flags
    start with ``prefix`` (``decoder-`` gives ``--decoder-epochs``). The stage's fields named in
    ``exclude`` are not options of the owner (the owner does not use them): no flag, no dock
    field, their default kept."""
    unknown = set(exclude) - {field.name for field in dataclasses.fields(settings_type)}
    if unknown:
        raise ValueError(f"{settings_type.__name__} has no field {', '.join(sorted(unknown))}")
    return dataclasses.field(default_factory=settings_type,
                             metadata={PREFIX_KEY: prefix, EXCLUDE_KEY: tuple(exclude)})


def option_range(settings_type: type, name: str) -> OptionRange | None:
    """The declared range of ``settings_type``'s field ``name`` (None: not declared)."""
    found = {f.name: f for f in dataclasses.fields(settings_type)}.get(name)
    return None if found is None else found.metadata.get(RANGE_KEY)


def check_options(settings: Any) -> None:
    """Raise :class:`OptionError` for the first field whose value is outside its range."""
    for field in dataclasses.fields(settings):
        bounds = field.metadata.get(RANGE_KEY)
        value = getattr(settings, field.name)
        if bounds is not None and not bounds.allows(value):
            what = f" ({bounds.help})" if bounds.help else ""
            raise OptionError(f"{field.name} = {value!r} is out of range{what}: "
                              f"use {bounds.describe()}")
