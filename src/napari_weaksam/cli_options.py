"""The ``weaksam`` command's options, made from settings dataclasses (one source of truth).

Each option of a settings dataclass (:mod:`.settings_fields`) becomes a flag whose help gives
its default and range; unset flags stay ``None``, so the dataclass's default applies. Options
several methods share (``--seed``, ``--epochs``) are one flag, whose help names each method's
default.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from .settings_fields import SettingsOption

OptionsByFlag = Mapping[str, list[SettingsOption]]


def add_settings_flags(parser: argparse.ArgumentParser,
                       owners: Sequence[tuple[str, OptionsByFlag]]) -> list[str]:
    """Add the flags of every owner (a method's or a command's name, its options by flag):
    one argument group per owner for its own flags, one for the flags several share. Returns
    the flags added."""
    owned: dict[str, list[tuple[str, list[SettingsOption]]]] = {}
    for owner, options in owners:
        for flag, same in options.items():
            owned.setdefault(flag, []).append((owner, same))
    groups: dict[str, argparse._ArgumentGroup] = {}
    for flag, holders in owned.items():
        _check_one_kind(flag, holders)
        title = (f"{holders[0][0]} options" if len(holders) == 1 and len(owners) > 1
                 else "options" if len(owners) == 1 else "options of several methods")
        group = groups.get(title) or groups.setdefault(title, parser.add_argument_group(title))
        _add_flag(group, flag, holders)
    return list(owned)


def given_flags(args: argparse.Namespace, flags: Sequence[str]) -> dict[str, Any]:
    """Flag → value of the flags the person gave (the others are left to the defaults)."""
    values = {flag: getattr(args, _dest(flag), None) for flag in flags}
    return {flag: value for flag, value in values.items() if value is not None}


def _add_flag(group: argparse._ArgumentGroup, flag: str,
              holders: list[tuple[str, list[SettingsOption]]]) -> None:
    first = holders[0][1][0]
    described = "; ".join(_describe(owner, same, len(holders) > 1) for owner, same in holders)
    if first.is_switch:
        group.add_argument(first.cli_flag(), dest=_dest(flag), action="store_const",
                           const=not first.default, default=None, help=described)
    else:
        group.add_argument(first.cli_flag(), dest=_dest(flag), type=first.kind, default=None,
                           metavar=flag.split("-")[-1].upper(), help=described)


def _describe(owner: str, options: list[SettingsOption], name_owner: bool) -> str:
    option = options[0]
    who = f"{owner}: " if name_owner else ""
    if option.is_switch:
        return f"{who}{option.bounds.help}"
    defaults = sorted({str(o.default) for o in options})
    return (f"{who}{option.bounds.help} (default {' / '.join(defaults)}; "
            f"{option.bounds.describe()})")


def _check_one_kind(flag: str, holders: list[tuple[str, list[SettingsOption]]]) -> None:
    kinds = {(o.kind, o.is_switch and o.default) for _owner, same in holders for o in same}
    if len(kinds) > 1:
        raise TypeError(f"--{flag} means values of different kinds: {sorted(map(str, kinds))}")


def _dest(flag: str) -> str:
    return "option_" + flag.replace("-", "_")


def add_dask_options(parser: argparse.ArgumentParser, work: str) -> None:
    """``--dask [SCHEDULER]`` and ``--workers N``: ``work`` ("encode", "segment") on Dask
    distributed workers (see :mod:`.cohort`)."""
    parser.add_argument("--dask", nargs="?", const="local", metavar="SCHEDULER",
                        help=f"{work} on Dask distributed workers: the scheduler's address, or "
                        "none for a local cluster of --workers processes")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes of the local cluster (default 2; with --dask alone)")
