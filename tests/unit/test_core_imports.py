"""The arrows of imports: ``scalper.core`` imports nothing of ours but ``core``, and no I/O;
between the package's top-level parts, exactly the arrows the README draws, no cycle.

Two checks, because each misses something the other sees:

* statically, every ``.py`` file under ``scalper/core`` is parsed and each import
  statement (including ones inside functions or ``if TYPE_CHECKING:``, and
  ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name) is
  checked: no trio, httpx, trio_websocket, loguru or time, nothing from ``scalper``
  outside ``scalper.core``, and no clock reads through ``datetime``.
* at run time, a fresh interpreter imports every module of the package and then
  looks at ``sys.modules``, which also catches an import pulled in indirectly through
  a third-party dependency. (``time`` is left to the static check: the interpreter
  itself loads it at start-up.)
"""

from __future__ import annotations

import ast
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import scalper.core

CORE_DIR = Path(scalper.core.__file__).parent
FORBIDDEN = frozenset({"trio", "httpx", "trio_websocket", "loguru", "time"})
#: forbidden at run time (``time`` is preloaded by the interpreter itself)
FORBIDDEN_RUNTIME = FORBIDDEN - {"time"}
CLOCK_CALLS = frozenset({"now", "utcnow", "today"})

CORE_FILES = sorted(CORE_DIR.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE_DIR.parent.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, module: str | None, level: int) -> str:
    """Absolute name of a (possibly relative) ``from ... import``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _problems(target: str, line: int) -> list[str]:
    root = target.split(".")[0]
    out = []
    if root in FORBIDDEN:
        out.append(f"line {line}: imports {target} (I/O, clock or logging in the core)")
    if (
        root == "scalper"
        and target != "scalper"
        and not (target == "scalper.core" or target.startswith("scalper.core."))
    ):
        out.append(f"line {line}: imports {target} (outside scalper.core)")
    return out


def import_problems(path: Path, name: str | None = None) -> list[str]:
    """Every forbidden import or clock read in one source file (of module ``name``)."""
    name = _module_name(path) if name is None else name
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problems += _problems(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.module, node.level)
            problems += _problems(base, node.lineno)
            if node.module is None:  # "from .. import x": x may itself be a module
                for alias in node.names:
                    problems += _problems(f"{base}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            dynamic = (isinstance(func, ast.Name) and func.id == "__import__") or (
                isinstance(func, ast.Attribute) and func.attr == "import_module"
            )
            if dynamic and node.args and isinstance(node.args[0], ast.Constant):
                target = str(node.args[0].value)
                problems += _problems(target, node.lineno)
            if (
                isinstance(func, ast.Attribute)
                and func.attr in CLOCK_CALLS
                and isinstance(func.value, ast.Name | ast.Attribute)
                and (func.value.id if isinstance(func.value, ast.Name) else func.value.attr)
                in {"datetime", "date"}
            ):
                problems.append(f"line {node.lineno}: reads the clock ({func.attr}())")
    return problems


def test_core_has_modules() -> None:
    names = {path.name for path in CORE_FILES}
    assert {"__init__.py", "model.py", "book.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_file_imports_nothing_forbidden(path: Path) -> None:
    assert import_problems(path) == []


def leaked_modules(modules: list[str]) -> list[str]:
    """Forbidden modules loaded by importing ``modules`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [
        m
        for m in json.loads(result.stdout)
        if m.split(".")[0] in FORBIDDEN_RUNTIME
        or (m.startswith("scalper.") and not m.startswith("scalper.core"))
    ]


def test_runtime_import_of_every_core_module_pulls_in_nothing_forbidden() -> None:
    modules = sorted(
        info.name for info in pkgutil.walk_packages(scalper.core.__path__, "scalper.core.")
    )
    assert "scalper.core.book" in modules
    assert leaked_modules(modules) == []


def test_runtime_check_sees_a_leak() -> None:
    leaked = leaked_modules(["scalper.core.model", "scalper.logging"])
    assert "loguru" in leaked
    assert "scalper.logging" in leaked


# ---------------------------------------------------------------- the checker itself


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import trio\n", "imports trio"),
        ("import time\n", "imports time"),
        ("from loguru import logger\n", "imports loguru"),
        ("import httpx.models\n", "imports httpx.models"),
        ("from trio_websocket import open_websocket_url\n", "imports trio_websocket"),
        ("from ..config import Settings\n", "imports scalper.config (outside scalper.core)"),
        ("from .. import app\n", "imports scalper.app (outside scalper.core)"),
        ("from scalper.bybit import parse\n", "imports scalper.bybit (outside"),
        ("def f():\n    import time\n", "imports time"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..app import bot\n",
            "imports scalper.app",
        ),
        ("import importlib\nimportlib.import_module('trio')\n", "imports trio"),
        ("__import__('loguru')\n", "imports loguru"),
        ("import datetime\nx = datetime.datetime.now()\n", "reads the clock (now())"),
        ("from datetime import date\nx = date.today()\n", "reads the clock (today())"),
    ],
)
def test_checker_catches_forbidden_imports(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    # as if the file lived in scalper/core, so relative imports resolve as they would there
    problems = _problems_as(path, CORE_DIR / "probe.py")
    assert len(problems) == 1
    assert expected in problems[0]


@pytest.mark.parametrize(
    "source",
    [
        "from .model import Side\n",
        "from . import model\n",
        "from scalper.core.instrument import round_qty\n",
        "import scalper.core.model\n",
        "from decimal import Decimal\nimport attrs, math, enum\n",
        "from datetime import datetime\nx = datetime.fromtimestamp(0)\n",
    ],
)
def test_checker_allows_core_and_stdlib(tmp_path: Path, source: str) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _problems_as(path, CORE_DIR / "probe.py") == []


def _problems_as(source: Path, pretend: Path) -> list[str]:
    """``import_problems`` of ``source`` as if it were the core file at ``pretend``."""
    return import_problems(source, _module_name(pretend))


# ---------------------------------------------------------------- the README's arrows
#
# The README's "Layout" section lists every arrow between the top-level parts of the
# package (``cli``, ``app``, ``core``, ...). These tests read every import of every
# module (statically, including imports inside functions) and check the code and the
# list against each other both ways, that the named-module restrictions hold, and that
# the parts form no cycle.

PACKAGE_DIR = CORE_DIR.parent
README = PACKAGE_DIR.parent / "README.md"
ARROW_LINE = re.compile(r"^    ([a-z_]+)\s+->(.*)$")
QUALIFIER = re.compile(r"^\((from )?([a-z_.]+) only\b")


@attrs.frozen
class Arrow:
    source: str
    target: str
    #: "scalper.x.y": every import of this arrow must come from (``importer``) or go
    #: to (``imported``) that module
    only: str | None = None
    only_side: str | None = None


def _split_items(rhs: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in rhs:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        items.append(current.strip())
    return items


def parse_arrows(text: str) -> dict[str, list[Arrow]]:
    """``source -> [Arrow]`` from the arrow lines of a README text."""
    out: dict[str, list[Arrow]] = {}
    for line in text.splitlines():
        match = ARROW_LINE.match(line)
        if match is None:
            continue
        source = match.group(1)
        arrows = out.setdefault(source, [])
        for item in _split_items(match.group(2)):
            target, _, rest = item.partition(" ")
            qualifier = QUALIFIER.match(rest.strip())
            if qualifier is None:
                arrows.append(Arrow(source, target))
            else:
                side = "importer" if qualifier.group(1) else "imported"
                arrows.append(Arrow(source, target, f"scalper.{qualifier.group(2)}", side))
    return out


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "scalper" and len(parts) > 1 else None


def package_imports() -> list[tuple[str, str]]:
    """Every (importer module, imported module) between two top-level parts."""
    pairs = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        importer = _module_name(path)
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(importer, is_package, node.module, node.level)
                targets = [base]
                if node.module is None:
                    targets += [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                source_part, target_part = _part(importer), _part(target)
                if source_part and target_part and source_part != target_part:
                    pairs.append((importer, target))
    return pairs


def part_graph(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for importer, imported in pairs:
        source, target = _part(importer), _part(imported)
        assert source is not None and target is not None
        graph.setdefault(source, set()).add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its nodes in order), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def readme_arrows() -> dict[str, list[Arrow]]:
    arrows = parse_arrows(README.read_text())
    assert arrows, "the README's Layout section lists no arrows"
    return arrows


def test_every_part_of_the_package_is_in_the_readme_list() -> None:
    parts = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE_DIR.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert set(readme_arrows()) == parts


def test_every_import_between_parts_is_an_arrow_of_the_readme() -> None:
    drawn = {(a.source, a.target) for arrows in readme_arrows().values() for a in arrows}
    undrawn = sorted(
        f"{importer} imports {imported}"
        for importer, imported in package_imports()
        if (_part(importer), _part(imported)) not in drawn
    )
    assert undrawn == []


def test_every_arrow_of_the_readme_is_an_import() -> None:
    graph = part_graph(package_imports())
    unused = [
        f"{a.source} -> {a.target}"
        for arrows in readme_arrows().values()
        for a in arrows
        if a.target not in graph.get(a.source, set())
    ]
    assert unused == []


def test_restricted_arrows_pass_only_through_their_module() -> None:
    restricted = [a for arrows in readme_arrows().values() for a in arrows if a.only]
    assert restricted, "the README names restricted arrows"
    pairs = package_imports()
    for arrow in restricted:
        assert arrow.only is not None
        for importer, imported in pairs:
            if (_part(importer), _part(imported)) != (arrow.source, arrow.target):
                continue
            side = importer if arrow.only_side == "importer" else imported
            assert side == arrow.only or side.startswith(arrow.only + "."), (
                f"{importer} imports {imported}: {arrow.source} -> {arrow.target} "
                f"passes only through {arrow.only}"
            )


def test_the_parts_form_no_cycle() -> None:
    assert find_cycle(part_graph(package_imports())) is None


def test_core_is_drawn_importing_nothing() -> None:
    assert readme_arrows()["core"] == []


# -- the checkers themselves


def test_arrow_parser_reads_items_and_qualifiers() -> None:
    text = (
        "    app      -> sim (from app.main only: why, and more), core\n"
        "    report   -> app (app.journal only: reading), core\n"
        "    core     ->\n"
        "  not an arrow -> x\n"
    )
    assert parse_arrows(text) == {
        "app": [Arrow("app", "sim", "scalper.app.main", "importer"), Arrow("app", "core")],
        "report": [
            Arrow("report", "app", "scalper.app.journal", "imported"),
            Arrow("report", "core"),
        ],
        "core": [],
    }


def test_cycle_finder_sees_a_cycle_and_none_in_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_package_imports_sees_a_function_level_import() -> None:
    # report reads the journal through a function-level import of app.journal
    assert ("scalper.report", "scalper.app.journal") in package_imports()
