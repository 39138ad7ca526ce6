"""Log setup: formats, bound context, and secrets redacted whatever path they take."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
from loguru import logger

from scalper.config import ExchangeSettings, LogSettings, Secret, Settings
from scalper.logging import REDACTED, configure_from_settings, configure_logging, make_redactor

SECRET = "Zx9-very-secret-Q7"


#: stdlib loggers whose levels configure_logging sets
_MANAGED = ("", "httpx", "httpcore", "trio-websocket", "hpack", "hypercorn.access")


@pytest.fixture(autouse=True)
def restore_loguru() -> Iterator[None]:
    root = logging.getLogger()
    handlers = root.handlers[:]
    levels = {name: logging.getLogger(name).level for name in _MANAGED}
    yield
    logger.remove()
    logger.configure(patcher=None)
    logger.add(sys.stderr)
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


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


# ---------------------------------------------------------------- stdlib logging


def test_stdlib_records_are_routed_and_redacted() -> None:
    out = human()
    logging.getLogger("httpx").warning("retrying with key %s", SECRET)
    logging.getLogger("trio-websocket").error(f"handshake failed: {SECRET}")
    text = out.getvalue()
    assert SECRET not in text
    first, second = text.splitlines()
    assert first.endswith("WARNING retrying with key ****  source=httpx")
    assert second.endswith("ERROR   handshake failed: ****  source=trio-websocket")


def test_stdlib_traceback_is_redacted() -> None:
    out = human()
    try:
        raise ConnectionError(f"reset while sending {SECRET}")
    except ConnectionError:
        logging.getLogger("hypercorn.error").exception("connection failed")
    text = out.getvalue()
    assert "ERROR   connection failed  source=hypercorn.error" in text
    assert "Traceback" in text
    assert "ConnectionError: reset while sending ****" in text
    assert SECRET not in text


def test_stdlib_json_lines_name_the_caller_and_the_source() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", None, [SECRET], stream=out)
    logging.getLogger("some.lib").info("token=%s", SECRET)
    record = json.loads(out.getvalue())
    assert record["message"] == "token=****"
    assert record["level"] == "INFO"
    assert record["source"] == "some.lib"
    assert record["name"] == __name__  # the frame that called logging, not logging itself


async def test_httpx_request_lines_are_debug_not_info() -> None:
    async def one_request() -> None:
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("http://exchange.test/v5/market/time")

    out = human("INFO")
    await one_request()
    assert "HTTP Request" not in out.getvalue()
    assert logging.getLogger("httpx").getEffectiveLevel() > logging.INFO  # not even created

    out = human("DEBUG")
    await one_request()
    (line,) = [line for line in out.getvalue().splitlines() if "HTTP Request" in line]
    assert " DEBUG   HTTP Request: GET http://exchange.test/v5/market/time" in line
    assert line.endswith("source=httpx")


def test_httpx_warnings_stay_warnings() -> None:
    out = human("INFO")
    logging.getLogger("httpx").warning("proxy env ignored")
    assert "WARNING proxy env ignored" in out.getvalue()


@pytest.mark.parametrize("name", ["trio-websocket", "httpcore.http11"])
def test_per_frame_debug_lines_are_trace(name: str) -> None:
    out = human("DEBUG")
    logging.getLogger(name).debug("conn#1 received %d bytes", 42)
    assert out.getvalue() == ""
    out = human("TRACE")
    logging.getLogger(name).debug("conn#1 received %d bytes", 42)
    assert "TRACE   conn#1 received 42 bytes" in out.getvalue()


def test_hypercorn_access_log_is_off_unless_asked_for() -> None:
    # hypercorn sets its own loggers' levels whenever a server starts (the simulator
    # asks for WARNING): start from a clean level so test order does not matter
    logging.getLogger("hypercorn.error").setLevel(logging.NOTSET)
    out = human("DEBUG")
    logging.getLogger("hypercorn.access").info('127.0.0.1 - "GET /v5/market/time" 200')
    logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:8765")
    assert "GET /v5/market/time" not in out.getvalue()
    assert "Running on http://127.0.0.1:8765" in out.getvalue()

    out = io.StringIO()
    configure_logging("INFO", "human", None, [], stream=out, access_log=True)
    logging.getLogger("hypercorn.access").info('127.0.0.1 - "GET /v5/market/time" 200')
    assert '"GET /v5/market/time" 200' in out.getvalue()


def test_stdlib_level_follows_the_configured_level() -> None:
    out = human("WARNING")
    logging.getLogger("some.lib").info("hidden")
    logging.getLogger("some.lib").warning("shown")
    assert "hidden" not in out.getvalue()
    assert "shown" in out.getvalue()


def test_reconfiguring_installs_one_handler_and_drops_foreign_ones() -> None:
    foreign = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler(foreign))  # e.g. a basicConfig
    human()
    out = human()
    logging.getLogger("some.lib").warning("key %s", SECRET)
    assert out.getvalue().count("key ****") == 1
    assert foreign.getvalue() == ""  # would have printed the secret unredacted


def test_unformattable_stdlib_args_do_not_raise() -> None:
    out = human()
    logging.getLogger("some.lib").warning("two %s %s", "one")
    assert "two %s %s [log arguments could not be formatted]" in out.getvalue()


def test_custom_stdlib_levels_keep_their_number() -> None:
    out = human("TRACE")
    logging.getLogger("some.lib").log(15, "between debug and info")
    assert "Level 15 between debug and info" in out.getvalue()


# ---------------------------------------------------------------- vps (issue 12)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_lines_are_short_time_level_message() -> None:
    out = _Tty()
    configure_logging("DEBUG", "human", None, [], stream=out)
    logger.bind(symbol="SOLUSDT", order_link_id="scalp-7").warning("entry filled")
    logger.info("plain")
    import re as _re

    plain = _re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    # the panel's header shows the symbol: only the context that adds is kept
    assert _re.fullmatch(r"\d\d:\d\d:\d\d WARN  entry filled  order_link_id=scalp-7", plain[0])
    assert _re.fullmatch(r"\d\d:\d\d:\d\d INFO  plain", plain[1])
    assert "\x1b[" in out.getvalue()  # coloured


def test_journald_lines_have_no_timestamp_but_a_priority(tmp_path: Path) -> None:
    with (tmp_path / "journal-stream").open("w+") as stream:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        configure_logging("DEBUG", "human", None, [SECRET], stream=stream, env=env)
        logger.bind(symbol="SOLUSDT").warning("stop moved {}", SECRET)
        logger.debug("detail")
        logger.error("bad")
        stream.seek(0)
        lines = stream.read().splitlines()
    assert lines == [
        "<4>WARNING stop moved ****  symbol=SOLUSDT",
        "<7>DEBUG   detail",
        "<3>ERROR   bad",
    ]


def test_journal_stream_of_another_file_is_not_journald(tmp_path: Path) -> None:
    with (tmp_path / "a").open("w+") as stream:
        configure_logging("INFO", "human", None, [], stream=stream, env={"JOURNAL_STREAM": "1:2"})
        logger.info("x")
        stream.seek(0)
        assert stream.read()[:4].isdigit()  # the full line, with its date


def test_log_file_rotates_keeps_history_and_stays_redacted(tmp_path: Path) -> None:
    path = tmp_path / "bot.log"
    out = io.StringIO()
    configure_logging(
        "INFO", "human", str(path), [SECRET], stream=out, rotation="2 KB", retention="3"
    )
    for i in range(200):
        logger.info("line {} secret {} padding {}", i, SECRET, "x" * 40)
    try:
        raise RuntimeError(f"auth failed for {SECRET}")
    except RuntimeError:
        logger.exception("request failed")
    configure_logging("INFO", "human", None, [], stream=out)  # closes the file
    files = sorted(tmp_path.glob("bot*.log"))
    assert path in files
    rotated = [f for f in files if f != path]
    assert len(rotated) == 3  # retention: 3 rotated files kept, the rest deleted
    text = "".join(f.read_text() for f in files)
    assert SECRET not in text
    assert "secret ****" in text
    assert "RuntimeError: auth failed for ****" in path.read_text()
    assert "line 199 secret ****" in path.read_text()
    for f in rotated:
        assert f.stat().st_size <= 2 * 1024 + 200


def test_rotated_files_are_compressed_and_redacted(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "bot.log"
    configure_logging(
        "INFO",
        "json",
        str(path),
        [SECRET],
        stream=io.StringIO(),
        rotation="1 KB",
        compression="gz",
    )
    for i in range(60):
        logger.info("line {} {}", i, SECRET)
    configure_logging("INFO", "human", None, [], stream=io.StringIO())
    archives = sorted(tmp_path.glob("bot*.log.gz"))
    assert archives
    for archive in archives:
        text = gzip.decompress(archive.read_bytes()).decode()
        assert SECRET not in text and "****" in text
        assert all(json.loads(line)["message"].startswith("line ") for line in text.splitlines())


def test_configure_from_settings_passes_rotation(tmp_path: Path) -> None:
    path = tmp_path / "s.log"
    settings = attrs.evolve(
        Settings(), log=LogSettings(file=str(path), rotation="1 KB", retention="", compression="")
    )
    configure_from_settings(settings, stream=io.StringIO())
    for i in range(50):
        logger.info("line {} {}", i, "y" * 50)
    configure_logging("INFO", "human", None, [], stream=io.StringIO())
    assert len(list(tmp_path.glob("s*.log"))) > 1
