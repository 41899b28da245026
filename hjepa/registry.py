"""Registries of level kinds and planners, by name.

A level kind is a class derived from :class:`hjepa.level.Level`, registered with
``@register_level("name")``; a planner is a class following :class:`hjepa.planning.search.Planner`,
registered with ``@register_planner("name")``. Either is registered when its module is
imported, and each registry imports, on its first lookup:

- every module of its package: ``hjepa.levels`` (the ``levels/`` folder of the source tree) or
  ``hjepa.planners`` (the ``planners/`` folder), so a new file there is a new kind or planner
  with no other edit;
- every entry point of its group, ``hjepa.levels`` or ``hjepa.planners``, of the installed
  packages, so one in a package of your own is found by the ``hjepa`` command line too
  (``pyproject.toml``: ``[project.entry-points."hjepa.levels"] mykind = "mypackage.mylevel"``).

A module your own code imports before it builds a stack or plans registers its entries as well.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Callable, Generic, TypeVar

from hjepa.errors import ConfigError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from hjepa.level import Level
    from hjepa.planning.search import Planner

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes by name, with the modules of ``package`` and the entry points of the group of the
    same name imported on the first lookup.

    Args:
        what: what an entry is, for messages ("level kind", "planner").
        package: the package whose modules hold the built-in entries and drop-in files.
        folder: that package's folder in the source tree, for messages.
        decorator: the decorator's name, for messages.
        base: what an entry must be, for messages.
    """

    def __init__(self, what: str, package: str, folder: str, decorator: str, base: str) -> None:
        self.what, self.package, self.folder, self.decorator, self.base = what, package, folder, decorator, base
        self.entries: dict[str, T] = {}
        self.loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make the class available under ``name``."""

        def deco(cls: T) -> T:
            if name in self.entries and self.entries[name] is not cls:
                raise ValueError(f"The {self.what} '{name}' is already registered by "
                                 f"{self.entries[name].__qualname__}.")  # fmt: skip
            self.entries[name] = cls
            cls.kind = name  # type: ignore[attr-defined]
            return cls

        return deco

    def _load(self) -> None:
        """Import the package's modules and the group's entry points (once)."""
        if self.loaded:
            return
        self.loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")
        for ep in entry_points(group=self.package):
            try:
                ep.load()
            except Exception as exc:  # a broken third-party package: name it rather than fail obscurely
                raise ConfigError(f"The entry point '{ep.name} = {ep.value}' of the group '{self.package}' "
                                  f"cannot be loaded ({type(exc).__name__}: {exc}).") from exc  # fmt: skip

    def get(self, name: str) -> T:
        """The class registered as ``name``; :class:`UnknownNameError` with suggestions if none."""
        self._load()
        if name not in self.entries:
            raise UnknownNameError(
                f"Unknown {self.what} '{name}'. Registered: {', '.join(sorted(self.entries))}."
                f"{did_you_mean(name, self.entries)} A {self.what} is a {self.base} decorated with "
                f"@{self.decorator}(name), found when its module is imported: a file in hjepa's {self.folder}/ folder "
                "is imported on the first lookup, and so is the module of an entry point in the group "
                f"'{self.package}' of an installed package ([project.entry-points.\"{self.package}\"] "
                'name = "package.module" in its pyproject.toml); from Python, importing the module first is enough.'
            )
        return self.entries[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self.entries)


LEVELS: Registry[type["Level"]] = Registry("level kind", "hjepa.levels", "levels", "register_level",
                                           "Level subclass")  # fmt: skip
PLANNERS: Registry[type["Planner"]] = Registry("planner", "hjepa.planners", "planners", "register_planner",
                                               "class with the Planner interface (hjepa.planning.search)")  # fmt: skip
ENTRY_POINT_GROUP = LEVELS.package

register_level = LEVELS.register
"""Class decorator: make a level kind available to stack configs under ``name``."""
register_planner = PLANNERS.register
"""Class decorator: make a planner available to plan specs and configurators under ``name``."""


def get_level_kind(name: str) -> type["Level"]:
    """The level class registered as ``name``; :class:`UnknownNameError` with suggestions if none."""
    return LEVELS.get(name)


def level_kinds() -> list[str]:
    """Names of every registered level kind."""
    return LEVELS.names()


def get_planner(name: str) -> type["Planner"]:
    """The planner class registered as ``name``; :class:`UnknownNameError` with suggestions if none."""
    return PLANNERS.get(name)


def planner_names() -> list[str]:
    """Names of every registered planner."""
    return PLANNERS.names()
