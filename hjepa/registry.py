"""Registry of level kinds, by name.

A level kind is a class derived from :class:`hjepa.level.Level`, registered with
``@register_level("name")``. The built-in kinds live in ``hjepa.levels`` and are imported on
first lookup; third-party kinds register by importing their module (or through the
``hjepa.levels`` entry-point group).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Callable, TypeVar

from hjepa.errors import UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from hjepa.level import Level

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
    global _LOADED_BUILTINS
    if _LOADED_BUILTINS:
        return
    _LOADED_BUILTINS = True
    importlib.import_module("hjepa.levels")
    for ep in entry_points(group="hjepa.levels"):
        ep.load()


def get_level_kind(name: str) -> type["Level"]:
    """The class registered as ``name``; :class:`UnknownNameError` with suggestions if none."""
    _load_builtins()
    if name not in _LEVELS:
        raise UnknownNameError(
            f"Unknown level kind '{name}'. Registered kinds: {', '.join(sorted(_LEVELS))}.{did_you_mean(name, _LEVELS)} "
            "A new kind is a Level subclass decorated with @register_level(name)."
        )
    return _LEVELS[name]


def level_kinds() -> list[str]:
    """Names of every registered level kind."""
    _load_builtins()
    return sorted(_LEVELS)
