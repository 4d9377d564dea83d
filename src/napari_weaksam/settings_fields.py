"""A settings dataclass as a flat list of options: what the CLI, the Train dock and provenance
derive from it (no torch, no Qt).

A method's settings dataclass nests its stages' (``nested(...)`` fields); each option declared
with :func:`.option_ranges.option` is one :class:`SettingsOption`, addressed by its dotted
``key`` (``engine.decoder.epochs``) and offered on the command line as ``--flag``. Several
options of one method may share a flag (``--seed`` sets every seed of a run): giving it sets all
of them, each checked by its own dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .option_ranges import EXCLUDE_KEY, FLAG_KEY, PREFIX_KEY, RANGE_KEY, OptionRange


@dataclass(frozen=True)
class SettingsOption:
    """One option of a settings dataclass (possibly inside a nested stage's settings)."""

    path: tuple[str, ...]     # field names from the top: ("engine", "decoder", "epochs")
    flag: str                 # the CLI's flag without "--": "decoder-epochs"
    default: Any
    bounds: OptionRange

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def kind(self) -> type:
        """bool, int, float or str: how a typed-in value is read."""
        return type(self.default)

    @property
    def is_switch(self) -> bool:
        return self.kind is bool

    def cli_flag(self) -> str:
        """``--zero-shot`` for a switch that is off by default, ``--no-maps`` for one that is
        on, ``--flag`` for any other option."""
        if self.is_switch and self.default:
            return f"--no-{self.flag}"
        return f"--{self.flag}"


def settings_options(settings_type: type) -> list[SettingsOption]:
    """Every declared option of ``settings_type`` and of the stages it nests, in field order."""
    return list(_walk(settings_type, (), ""))


def _walk(settings_type: type, path: tuple[str, ...], prefix: str,
          exclude: tuple[str, ...] = ()) -> Iterator[SettingsOption]:
    for field in dataclasses.fields(settings_type):
        if field.name in exclude:
            continue
        bounds = field.metadata.get(RANGE_KEY)
        if bounds is not None:
            flag = field.metadata.get(FLAG_KEY) or prefix + field.name.replace("_", "-")
            yield SettingsOption((*path, field.name), flag, field.default, bounds)
        elif _nested_type(field) is not None:
            inner = prefix + field.metadata.get(PREFIX_KEY, "")
            yield from _walk(_nested_type(field), (*path, field.name), inner,
                             field.metadata.get(EXCLUDE_KEY, ()))


def _nested_type(field: dataclasses.Field) -> type | None:
    factory = field.default_factory
    if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
        return factory  # type: ignore[return-value]
    return None


def options_by_flag(settings_type: type) -> dict[str, list[SettingsOption]]:
    """The options of ``settings_type`` by flag: a flag several options share sets all of them
    (``seed``: every seed of a run)."""
    by_flag: dict[str, list[SettingsOption]] = {}
    for option in settings_options(settings_type):
        by_flag.setdefault(option.flag, []).append(option)
    return by_flag


def settings_from_flags(settings_type: type, values: Mapping[str, Any], owner: str) -> Any:
    """``settings_type`` with ``values`` (flag → value) over the defaults; a flag it does not
    have raises ``ValueError`` naming ``owner`` (a method or a command), a value out of range
    its option's one-line message."""
    options = options_by_flag(settings_type)
    unknown = sorted(set(values) - set(options))
    if unknown:
        raise ValueError(f"{', '.join('--' + f for f in unknown)}: not an option of {owner}")
    return settings_with(settings_type, {option.key: value for flag, value in values.items()
                                         for option in options[flag]})


def settings_with(settings_type: type, values: Mapping[str, Any] | None = None) -> Any:
    """``settings_type`` with its defaults except ``values`` (option key → value); every stage is
    built through its own dataclass, so a value out of range raises its one-line
    :class:`~.option_ranges.OptionError`. An unknown key raises ``KeyError``."""
    values = dict(values or {})
    known = {option.key for option in settings_options(settings_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"{settings_type.__name__} has no option {', '.join(unknown)}")
    return _build(settings_type, (), values)


def _build(settings_type: type, path: tuple[str, ...], values: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(settings_type):
        key = ".".join((*path, field.name))
        if key in values:
            kwargs[field.name] = values[key]
        elif _nested_type(field) is not None and field.metadata.get(RANGE_KEY) is None:
            kwargs[field.name] = _build(_nested_type(field), (*path, field.name), values)
    return settings_type(**kwargs)


def option_values(settings: Any) -> dict[str, Any]:
    """Option key → value of every declared option of ``settings``."""
    values = {}
    for option in settings_options(type(settings)):
        value = settings
        for name in option.path:
            value = getattr(value, name)
        values[option.key] = value
    return values


def settings_from_params(settings_type: type, params: Mapping[str, Any]) -> Any:
    """Rebuild settings from stored provenance (``to_dict()`` as a round keeps it, read back
    from JSON): known fields are taken (a list back to a tuple where the default is one),
    anything else (the stage, checkpoint ids …) is ignored, a stage left out gets its
    defaults."""
    return _from_params(settings_type, params)


def _from_params(settings_type: type, params: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(settings_type):
        if field.name not in params:
            continue
        value = params[field.name]
        inner = _nested_type(field)
        if inner is not None and isinstance(value, Mapping):
            kwargs[field.name] = _from_params(inner, value)
        elif isinstance(field.default, tuple) and isinstance(value, list):
            kwargs[field.name] = tuple(value)
        else:
            kwargs[field.name] = value
    return settings_type(**kwargs)
