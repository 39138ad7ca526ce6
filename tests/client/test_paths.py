"""Every Bybit REST path the client calls is spelled once, in ``scalper/bybit/paths.py``.

The transport, the pacer, order entry and the endpoint groups name an endpoint through
those constants; a path literal anywhere else in the package (code, docstring or
comment) is a second spelling that can drift from the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import scalper.bybit
from scalper.bybit import paths

PACKAGE = Path(scalper.bybit.__file__).resolve().parent
V5_PATH = re.compile(r"/v5/[a-z-]+/[a-z-]+")


def test_rest_paths_are_spelled_only_in_paths_py() -> None:
    found = {
        f"{module.name}:{lineno}: {m.group()}"
        for module in sorted(PACKAGE.glob("*.py"))
        if module.name != "paths.py"
        for lineno, line in enumerate(module.read_text().splitlines(), 1)
        for m in V5_PATH.finditer(line)
    }
    assert found == set()


def test_paths_py_holds_every_path_once() -> None:
    text = (PACKAGE / "paths.py").read_text()
    spelled = V5_PATH.findall(text)
    assert spelled, "paths.py names no path: the pattern no longer matches"
    assert len(spelled) == len(set(spelled))
    exported = {getattr(paths, name) for name in paths.__all__}
    assert set(spelled) <= exported
