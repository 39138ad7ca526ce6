"""Log setup: formats, bound context, and secrets redacted whatever path they take."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from loguru import logger

from scalper.config import ExchangeSettings, LogSettings, Secret, Settings
from scalper.logging import REDACTED, configure_from_settings, configure_logging, make_redactor

SECRET = "Zx9-very-secret-Q7"


@pytest.fixture(autouse=True)
def restore_loguru() -> Iterator[None]:
    yield
    logger.remove()
    logger.configure(patcher=None)
    logger.add(sys.stderr)


def human(level: str = "DEBUG", secrets: tuple[str, ...] = (SECRET,)) -> io.StringIO:
    out = io.StringIO()
    configure_logging(level, "human", None, secrets, stream=out)
    return out


def test_secret_logged_by_mistake_is_redacted() -> None:
    out = human()
    logger.info("signing with {}", SECRET)
    logger.info(f"f-string {SECRET} too")
    text = out.getvalue()
    assert SECRET not in text
    assert text.count(REDACTED) == 2
    assert "signing with ****" in text


def test_secret_in_bound_context_is_redacted() -> None:
    out = human()
    logger.bind(symbol="SOLUSDT", header=f"X-BAPI-SIGN {SECRET}", count=3).warning("sent")
    line = out.getvalue()
    assert SECRET not in line
    assert "header=X-BAPI-SIGN ****" in line
    assert "count=3" in line


def test_secret_in_a_traceback_is_redacted() -> None:
    out = human()
    try:
        raise RuntimeError(f"auth failed for {SECRET}")
    except RuntimeError:
        logger.exception("request failed")
    text = out.getvalue()
    assert "Traceback" in text
    assert "RuntimeError: auth failed for ****" in text
    assert SECRET not in text


def test_json_lines_are_redacted_including_escaped_forms() -> None:
    quoted = 'ab"cd\\ef'  # a secret that JSON escapes
    out = io.StringIO()
    configure_logging("INFO", "json", None, [SECRET, quoted], stream=out)
    logger.bind(order_link_id="scalp-1", symbol="BTCUSDT").info("key {} and {}", SECRET, quoted)
    try:
        raise ValueError(quoted)
    except ValueError:
        logger.exception("boom")
    text = out.getvalue()
    assert SECRET not in text
    assert quoted not in text and json.dumps(quoted)[1:-1] not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "key **** and ****"
    assert first["level"] == "INFO"
    assert first["symbol"] == "BTCUSDT" and first["order_link_id"] == "scalp-1"
    assert first["name"] == __name__
    assert "time" in first
    assert second["exception"].endswith("ValueError: ****")


def test_json_keeps_numbers_and_stringifies_objects() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", None, [], stream=out)
    logger.bind(qty=1.5, n=2, ok=True, obj=Path("/x")).info("m")
    record = json.loads(out.getvalue())
    assert (record["qty"], record["n"], record["ok"], record["obj"]) == (1.5, 2, True, "/x")


def test_human_line_is_compact_with_context() -> None:
    out = human()
    logger.bind(symbol="SOLUSDT", order_link_id="scalp-7").info("entry filled")
    logger.info("no context")
    first, second = out.getvalue().splitlines()
    assert first.endswith("INFO    entry filled  symbol=SOLUSDT order_link_id=scalp-7")
    assert first[:4].isdigit()  # starts with the date/time
    assert second.endswith("INFO    no context")
    assert "\x1b[" not in first  # no colours when not a terminal


def test_level_filters() -> None:
    out = human("warning")
    logger.info("hidden")
    logger.warning("shown")
    assert "hidden" not in out.getvalue()
    assert "shown" in out.getvalue()


def test_file_sink_is_redacted_and_closed_on_reconfigure(tmp_path: Path) -> None:
    path = tmp_path / "bot.log"
    out = io.StringIO()
    configure_logging("INFO", "human", str(path), [SECRET], stream=out)
    logger.info("to file {}", SECRET)
    configure_logging("INFO", "human", None, [], stream=out)  # removes (and closes) the file
    logger.info("not in file")
    text = path.read_text()
    assert "to file ****" in text
    assert SECRET not in text
    assert "not in file" not in text
    assert "to file ****" in out.getvalue()


def test_short_strings_are_not_treated_as_secrets() -> None:
    redact = make_redactor(["", "ab", SECRET])
    assert redact("ab cd " + SECRET) == "ab cd ****"
    assert make_redactor([])("anything") == "anything"


def test_longest_secret_wins() -> None:
    redact = make_redactor(["secret1", "secret1-long"])
    assert redact("x secret1-long y secret1") == "x **** y ****"


def test_bad_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml", None, [])


def test_configure_from_settings_redacts_the_api_secrets() -> None:
    settings = attrs.evolve(
        Settings(),
        exchange=ExchangeSettings(api_key=Secret("key-" + SECRET), api_secret=Secret(SECRET)),
        log=LogSettings(level="DEBUG", format="human"),
    )
    out = io.StringIO()
    configure_from_settings(settings, stream=out)
    logger.debug("headers: key={} secret={}", "key-" + SECRET, SECRET)
    text = out.getvalue()
    assert SECRET not in text
    assert "headers: key=**** secret=****" in text


class _Console:
    """A stream-like object without isatty (like a status panel wrapper)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_any_writable_stream_works() -> None:
    console = _Console()
    configure_logging("INFO", "human", None, [SECRET], stream=console)  # type: ignore[arg-type]
    logger.info("x {}", SECRET)
    assert console.parts and "x ****" in console.parts[0]
