"""Level kinds are found without editing hjepa: from a module the caller imports, from a new
file in the levels/ package, or from an entry point; the unknown-kind error says how."""

from __future__ import annotations

import importlib
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import hjepa.levels
from hjepa import registry
from hjepa.errors import UnknownNameError
from hjepa.registry import get_level_kind, level_kinds

KIND_MODULE = '''
from hjepa.levels.temporal import TemporalLevel
from hjepa.registry import register_level


@register_level("{name}")
class Kind(TemporalLevel):
    """A temporal level under another name."""
'''


def _write_kind(folder: Path, module: str, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(KIND_MODULE.format(name=name)))


@pytest.fixture()
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry that loads the built-ins, the levels/ modules and the entry points again; the
    kinds a test registers are dropped afterwards."""
    level_kinds()
    monkeypatch.setattr(registry.LEVELS, "entries", dict(registry.LEVELS.entries))
    monkeypatch.setattr(registry.LEVELS, "loaded", False)


def test_a_kind_in_a_module_the_caller_imports_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         fresh_registry: None) -> None:  # fmt: skip
    _write_kind(tmp_path, "my_bilinear_level", "bilinear_test")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownNameError):
        get_level_kind("bilinear_test")
    importlib.import_module("my_bilinear_level")
    assert get_level_kind("bilinear_test").__module__ == "my_bilinear_level"
    monkeypatch.delitem(sys.modules, "my_bilinear_level")


def test_a_new_file_in_the_levels_package_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   fresh_registry: None) -> None:  # fmt: skip
    _write_kind(tmp_path, "dropin", "dropin_test")
    monkeypatch.setattr(hjepa.levels, "__path__", [*hjepa.levels.__path__, str(tmp_path)])
    assert get_level_kind("dropin_test").__module__ == "hjepa.levels.dropin"
    monkeypatch.delitem(sys.modules, "hjepa.levels.dropin")


def test_an_entry_point_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> None:
    _write_kind(tmp_path, "plugin_level", "plugin_test")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="plugin_test", value="plugin_level", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    assert "plugin_test" in level_kinds()
    monkeypatch.delitem(sys.modules, "plugin_level")


def test_the_unknown_kind_error_names_the_discovery_mechanisms() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_level_kind("bilinear")
    text = " ".join(str(info.value).split())
    for fragment in ("@register_level(name)", "levels/ folder", "entry point in the group 'hjepa.levels'",
                     '[project.entry-points."hjepa.levels"]', "importing the module first"):  # fmt: skip
        assert fragment in text, text
