"""The weak-supervision methods a person can choose: a registry of plug-ins (no torch here).

A method is a name, a settings dataclass (the single source of its options' defaults, ranges and
help: the CLI's flags, the Train dock's fields and each round's provenance all come from it) and
a runner ``run(context, settings) -> report`` imported only when a run starts, so the ``weaksam``
command and the dock open fast. The built-in methods are in :mod:`.builtin`; another package adds
one with an entry point in the group ``napari_weaksam.methods`` naming a :class:`Method`, or by
calling :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..settings_fields import (
    SettingsOption,
    options_by_flag,
    settings_from_flags,
    settings_with,
)
from .image_kinds import TITLES, KindDefault

if TYPE_CHECKING:
    from ..training_plan import PlannedStage, ProjectSize
    from .context import RunContext

ENTRY_POINT_GROUP = "napari_weaksam.methods"


def _no_stages(_settings: Any) -> list[PlannedStage]:
    return []


def _no_plan(_settings: Any, _size: ProjectSize | None) -> str:
    return ""


@dataclass(frozen=True)
class Method:
    """One weak-supervision method; see the module docstring."""

    name: str                 # the CLI's --method value, stored with every round it makes
    title: str                # "EP-SAM": how the Train dock names it
    summary: str              # one line under the dock's method list
    settings_type: type       # its settings dataclass
    # function(context, settings) -> report (with a ``summary()`` line for the CLI), or its
    # "package.module:function" path, imported only when a run starts
    runner: str | Callable[[RunContext, Any], Any]
    stages: Callable[[Any], list[PlannedStage]] = _no_stages   # what it reports, in order
    plan_text: Callable[[Any, ProjectSize | None], str] = _no_plan  # the dock's "what Start does"
    dock_options: tuple[str, ...] = ()   # option keys the Train dock shows (the rest: the CLI)
    learns_from_reviews: bool = False    # people's accepted/corrected masks train it
    # False: not a method to start from tags (the dock's list and ``run --method`` leave it
    # out); its rounds still predict, and it has its own command (``weaksam retrain``)
    listed: bool = True
    # factory(project, backbone, round) -> a predictor whose models segment new items (no
    # tags, no training; see .prediction), or its "package.module:name" path; None: not offered
    predictor: str | Callable[[Any, Any, Any], Any] | None = None
    suits: tuple[str, ...] = ()   # the image kinds (.image_kinds) it is the method of choice for
    # kind → flag → its value there, and why: what a project of that kind starts from
    kind_defaults: Mapping[str, Mapping[str, KindDefault]] = field(default_factory=dict)
    kind_caveats: Mapping[str, str] = field(default_factory=dict)  # kind → what to expect there

    def settings(self, values: Mapping[str, Any] | None = None) -> Any:
        """Its settings with ``values`` (option key → value) over the defaults; a value out of
        range raises :class:`~..option_ranges.OptionError`."""
        return settings_with(self.settings_type, values)

    def options(self) -> dict[str, list[SettingsOption]]:
        """Its options by flag (the CLI's ``--flag`` and the dock's field); a flag several
        options share sets all of them (``seed``: every seed of the run)."""
        return options_by_flag(self.settings_type)

    def settings_from_flags(self, values: Mapping[str, Any]) -> Any:
        """Its settings with ``values`` (flag → value) over the defaults; a flag it does not
        have raises ``ValueError``, a value out of range its option's one-line message."""
        return settings_from_flags(self.settings_type, values, self.name)

    def defaults_for(self, kind: str | None) -> dict[str, Any]:
        """Flag → value of the options that differ for images of ``kind`` (None: none)."""
        return {flag: chosen.value for flag, chosen in self.kind_defaults.get(kind, {}).items()}

    def settings_for(self, kind: str | None, values: Mapping[str, Any]) -> Any:
        """Its settings for images of ``kind``: ``values`` (flag → value, what the person set)
        over the kind's defaults over the dataclass's."""
        return self.settings_from_flags({**self.defaults_for(kind), **values})

    def kind_note(self, kind: str | None, given: Mapping[str, Any] | None = None, *,
                  why: bool = True) -> str:
        """What it does differently for images of ``kind`` (the flags in ``given`` aside), with
        why, and what to expect there; "" when nothing."""
        parts = [f"{flag} {default.value}" + (f" ({default.why})" if why else "")
                 for flag, default in self.kind_defaults.get(kind, {}).items()
                 if flag not in (given or {})]
        caveat = self.kind_caveat(kind, why=why)
        return "; ".join(parts + [caveat] if caveat else parts)

    def kind_caveat(self, kind: str | None, *, why: bool = True) -> str:
        """What to expect on images of ``kind`` ("" when nothing); without ``why``, the part
        before its parenthesis."""
        caveat = self.kind_caveats.get(kind, "")
        return caveat if why else caveat.split(" (")[0]

    def run(self, context: RunContext, settings: Any | None = None) -> Any:
        """Run it (its default settings when none are given)."""
        runner = self.runner
        if isinstance(runner, str):
            module, function = runner.split(":")
            runner = getattr(import_module(module), function)
        return runner(context, settings if settings is not None else self.settings())


    def make_predictor(self, project: Any, backbone: Any, round_: Any) -> Any:
        """The predictor of ``round_`` (one of this method's finished rounds)."""
        factory = self.predictor
        if factory is None:
            raise ValueError(f"{self.title} cannot segment new images from a round yet; "
                             "tag them and run it")
        if isinstance(factory, str):
            module, name = factory.split(":")
            factory = getattr(import_module(module), name)
        return factory(project, backbone, round_)


_METHODS: dict[str, Method] = {}
_loaded = False


def register(method: Method) -> Method:
    """Make ``method`` available to the CLI and the dock (a name already taken is refused)."""
    if method.name in _METHODS and _METHODS[method.name] is not method:
        raise ValueError(f"a method named {method.name!r} is registered already")
    for kind, defaults in method.kind_defaults.items():   # a typo fails here, not in a run
        method.settings_from_flags({flag: chosen.value for flag, chosen in defaults.items()})
        if kind not in TITLES:
            raise ValueError(f"{method.name}: {kind!r} is not an image kind ({', '.join(TITLES)})")
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    _METHODS.pop(name, None)


def all_methods() -> list[Method]:
    """Every registered method: the built-in ones first, then plug-ins, in registration order."""
    _load()
    return list(_METHODS.values())


def method_names() -> tuple[str, ...]:
    return tuple(method.name for method in all_methods())


def listed_methods() -> list[Method]:
    """The methods a person starts from tags: the dock's list and ``weaksam run --method``."""
    return [method for method in all_methods() if method.listed]


def method_for_kind(kind: str | None) -> Method:
    """The method of choice for images of ``kind``: the first listed one that suits it (else the
    first listed)."""
    listed = listed_methods()
    return next((method for method in listed if kind in method.suits), listed[0])


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name raises ``ValueError`` listing the known."""
    _load()
    if name not in _METHODS:
        raise ValueError(f"no method called {name!r}: use one of {', '.join(_METHODS)}")
    return _METHODS[name]


def method_of(settings: Any) -> Method:
    """The method whose settings ``settings`` are."""
    for method in all_methods():
        if isinstance(settings, method.settings_type):
            return method
    raise ValueError(f"{type(settings).__name__} are not the settings of a registered method")


def _load() -> None:
    """Register the built-in methods, then those other installed packages declare."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import_module(f"{__package__}.builtin")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        method = entry.load()
        if not isinstance(method, Method):
            raise TypeError(f"entry point {entry.name!r} of {ENTRY_POINT_GROUP} is not a Method")
        register(method)
