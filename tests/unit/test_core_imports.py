"""The arrow of imports: ``scalper.core`` imports nothing of ours but ``core``, and no I/O.

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
import subprocess
import sys
from pathlib import Path

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
