"""Every command in the docs works.

- The ```python blocks of each tutorial (docs/tutorials/*.md) run in order, in one namespace, in
  a fresh working directory, as a reader would paste them into a notebook. A block whose first
  line is ``# file: PATH`` shows part of a repository file instead: it must appear in that
  file verbatim.
- Every ``hjepa ...`` command in a shell block of README.md and docs/**/*.md parses with the
  CLI's own parser (``build_parser().parse_args``) and its ``--set`` overrides name real
  config fields; nothing long is run. ``...`` stands for elided arguments and is dropped.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
from pathlib import Path

import pytest

from hjepa.config import apply_overrides
from hjepa.experiments.cli import build_parser
from hjepa.experiments.presets import debug

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell", "console"}


def blocks(path: Path, langs: set[str]) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang in langs]


def hjepa_commands(path: Path) -> list[str]:
    """The ``hjepa`` command lines of a file's shell blocks (continuations joined)."""
    found = []
    for body in blocks(path, SHELL):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            argv = shlex.split(line, comments=True) if line else []
            for i, token in enumerate(argv):
                if token == "hjepa" or (token == "hjepa.experiments.cli" and i > 0 and argv[i - 1] == "-m"):
                    found.append(shlex.join([t for t in argv[i:] if t != "..."]))
                    break
    return found


def test_the_tutorials_exist() -> None:
    names = {p.stem for p in TUTORIALS}
    assert {"quickstart", "train-and-evaluate", "inspect", "add-a-level", "gpu"} <= names


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_excerpts_match_the_files(path: Path) -> None:
    for body in blocks(path, {"python"}):
        first, _, rest = body.partition("\n")
        if first.startswith("# file: "):
            source = (ROOT / first.removeprefix("# file: ").strip()).read_text(encoding="utf-8")
            assert rest.strip() in source, f"{path.name}: the excerpt of {first} differs from the file"


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_code_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"tutorial_{path.stem}"}
    code = [b for b in blocks(path, {"python"}) if not b.startswith("# file: ")]
    for i, body in enumerate(code):
        try:
            exec(compile(body, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # name the block: the traceback alone points into exec
            raise AssertionError(f"{path.name}, python block {i} failed: {type(exc).__name__}: {exc}") from exc


def test_every_hjepa_command_in_the_docs_parses() -> None:
    parser, checked = build_parser(), 0
    for path in DOCS:
        for command in hjepa_commands(path):
            argv = shlex.split(command)[1:]
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:
                assert exc.code == 0, f"{path.relative_to(ROOT)}: `{command}` does not parse (see stderr)"
                continue
            apply_overrides(debug(), getattr(args, "overrides", []))  # every --set names a real config field
            checked += 1
    assert checked >= 20  # the docs do show commands; an extraction bug would find none


def test_command_extraction(tmp_path: Path) -> None:
    assert any(c.startswith("hjepa inspect --checkpoint") for c in hjepa_commands(ROOT / "docs" / "tutorials" / "inspect.md"))
    sample = tmp_path / "sample.md"
    sample.write_text("```bash\nsrun hjepa train --data d \\\n  --out o   # comment\n"
                      "python -m hjepa.experiments.cli bench --suite debug ...\nmake test\n```\n", encoding="utf-8")  # fmt: skip
    assert hjepa_commands(sample) == ["hjepa train --data d --out o", "hjepa.experiments.cli bench --suite debug"]


def resolve(dotted: str) -> object:
    """The object a dotted name points to: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_name_in_the_api_reference_exists() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    checked = 0
    for row in re.findall(r"^\| (.+?) \|", text, re.M):
        cell = re.sub(r"\(`[^`]*`\)", "", row)  # "(`grid`)": a registered name, not an attribute
        module = "hjepa.inspection"  # the inspection table lists bare names
        for token in re.findall(r"`([^`]+)`", cell):
            if "*" in token or token in ("name",):
                continue
            if "." in token:
                obj = resolve(token)
                module = token if inspect.ismodule(obj) else token.rsplit(".", 1)[0]
            else:
                assert hasattr(resolve(module), token), f"docs/api.md: {module}.{token} does not exist"
            checked += 1
    assert checked > 80
