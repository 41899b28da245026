"""Registry of level kinds, by name.

A level kind is a class derived from :class:`hjepa.level.Level`, registered with
``@register_level("name")`` when its module is imported. The registry imports, on the first
lookup:

- every module of the ``hjepa.levels`` package (the ``levels/`` folder of the source tree), so
  a new file there is a new kind with no other edit;
- every entry point of the group ``hjepa.levels`` of the installed packages, so a kind in a
  package of your own is found by the ``hjepa`` command line too (``pyproject.toml``:
  ``[project.entry-points."hjepa.levels"] mykind = "mypackage.mylevel"``).

A module your own code imports before it builds a stack registers its kinds as well.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Callable, TypeVar

from hjepa.errors import ConfigError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from hjepa.level import Level

ENTRY_POINT_GROUP = "hjepa.levels"
_LEVELS: dict[str, type["Level"]] = {}
_LOADED_BUILTINS = False

L = TypeVar("L", bound=type)


def register_level(name: str) -> Callable[[L], L]:
    """Class decorator: make a level kind available to stack configs under ``name``."""

    def deco(cls: L) -> L:
        if name in _LEVELS and _LEVELS[name] is not cls:
            raise ValueError(f"Level kind '{name}' is already registered by {_LEVELS[name].__qualname__}.")
        _LEVELS[name] = cls
        cls.kind = name  # type: ignore[attr-defined]
        return cls

    return deco


def _load_builtins() -> None:
    """Import the modules of ``hjepa.levels`` and the ``hjepa.levels`` entry points (once)."""
    global _LOADED_BUILTINS
    if _LOADED_BUILTINS:
        return
    _LOADED_BUILTINS = True
    package = importlib.import_module("hjepa.levels")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"hjepa.levels.{module.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party package: name it rather than fail obscurely
            raise ConfigError(f"The entry point '{ep.name} = {ep.value}' of the group '{ENTRY_POINT_GROUP}' "
                              f"cannot be loaded ({type(exc).__name__}: {exc}).") from exc  # fmt: skip


def get_level_kind(name: str) -> type["Level"]:
    """The class registered as ``name``; :class:`UnknownNameError` with suggestions if none."""
    _load_builtins()
    if name not in _LEVELS:
        raise UnknownNameError(
            f"Unknown level kind '{name}'. Registered kinds: {', '.join(sorted(_LEVELS))}.{did_you_mean(name, _LEVELS)} "
            "A kind is a Level subclass decorated with @register_level(name), found when its module is imported: "
            "a file in hjepa's levels/ folder is imported on the first lookup, and so is the module of an entry point "
            f"in the group '{ENTRY_POINT_GROUP}' of an installed package ([project.entry-points.\"{ENTRY_POINT_GROUP}\"] "
            "name = \"package.module\" in its pyproject.toml); from Python, importing the module first is enough."
        )
    return _LEVELS[name]


def level_kinds() -> list[str]:
    """Names of every registered level kind."""
    _load_builtins()
    return sorted(_LEVELS)
