"""Rendering: ``scalper check-config``'s view of the effective settings."""

from __future__ import annotations

import attrs

from .kinds import (
    Secret,
)
from .sections import (
    _SECTIONS,
    Settings,
)

# ---------------------------------------------------------------- rendering


def _render_value(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, Secret):
        return f'"{value.masked()}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_settings(settings: Settings) -> str:
    """Every effective value, secrets masked, each with where it came from (TOML-like)."""
    lines: list[str] = []
    for section in _SECTIONS:
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        values = getattr(settings, section)
        rows = [
            (f"{f.name} = {_render_value(getattr(values, f.name))}", f"{section}.{f.name}")
            for f in attrs.fields(type(values))
        ]
        width = max(len(text) for text, _ in rows)
        for text, key in rows:
            origin = settings.sources.get(key, "default")
            lines.append(f"{text.ljust(width)}  # {origin}")
    return "\n".join(lines) + "\n"
