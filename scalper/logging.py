"""Log setup for the shells (``app/``, ``sim/``, the CLI): loguru, one call at start-up.

* ``human`` (default): one compact line per event on stderr, coloured when stderr is
  a terminal, with the bound context (``logger.bind(symbol=..., order_link_id=...)``)
  appended as ``key=value`` pairs: ``12:00:01.234 INFO  entry filled  symbol=SOLUSDT ...``.
* ``json``: one JSON object per line (``time``, ``level``, ``message``, ``name``, the
  bound context, ``exception``), for log shippers on a VPS.
* in a terminal (the live panel or a plain tty) lines are short: the time to the
  second, a five-letter level, the message, and the context minus ``symbol`` (the
  panel's header shows it): ``12:00:01 INFO  entry filled  order_link_id=...``.
* under systemd with journald as the log (``JOURNAL_STREAM`` names our stderr, no
  terminal) lines carry no timestamp of their own (journald adds one) and start with
  the syslog priority prefix ``<N>``, so ``journalctl -p warning`` filters by level.
* optional file sink (``log.file``, same format as the non-terminal stderr, never
  coloured) through loguru's own file handling: ``log.rotation`` (a size such as
  ``"50 MB"``, an age such as ``"1 day"`` or a time of day ``"00:00"``),
  ``log.retention`` (an age or a number of files) and ``log.compression`` of the
  rotated files (``"gz"``, ...). The text is rendered and redacted before loguru
  writes it, so the rotated files are redacted exactly like the live one.

Secrets are redacted twice, as defence in depth: a patcher rewrites the message and
bound string values of every record (so any sink added later sees them redacted), and
every sink installed here redacts its final text too, which also covers tracebacks.
Libraries that log through the standard ``logging`` module (httpx, httpcore,
trio-websocket, hypercorn) are routed into loguru by an intercept handler on the root
logger, so their lines get the same format, sinks and redaction as ours. Chatty ones
are moved one level down on the way (``_DEMOTE``): httpx's per-request INFO line
becomes DEBUG (at 10 requests/s it is noise), httpcore's and trio-websocket's
per-frame DEBUG lines become TRACE. hypercorn's access log is off unless asked for.

The core never logs (it returns data); this module is only for the shells.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

    from .config import Settings

__all__ = ["REDACTED", "configure_from_settings", "configure_logging", "make_redactor"]

#: stdlib loggers (and their children) whose records are moved down a level before they
#: reach loguru: ``{logger: {stdlib level: loguru level}}``
_DEMOTE: Mapping[str, Mapping[int, str]] = {
    "httpx": {logging.INFO: "DEBUG"},  # "HTTP Request: GET ... 200 OK", every request
    "httpcore": {logging.DEBUG: "TRACE"},  # every connection step of every request
    "trio-websocket": {logging.DEBUG: "TRACE"},  # every frame sent and received
    "hpack": {logging.DEBUG: "TRACE"},  # header compression internals
    # "Running on http://...": the bot and `scalper exchange` announce the address
    # themselves; hypercorn's own line (with its source) wraps an 80-column pane
    "hypercorn.error": {logging.INFO: "DEBUG"},
}
#: hypercorn's access log: one line per request, INFO; off unless ``access_log=True``
_ACCESS_LOGGER = "hypercorn.access"
_STDLIB_LEVELS = (1, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)

#: what a secret is replaced with
REDACTED = "****"
#: shorter "secrets" are not redacted: replacing them would mangle ordinary text
MIN_SECRET_LEN = 4

_HUMAN = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "{message}{extra[_context]}\n{exception}"
)
_TERMINAL = (
    "<green>{time:HH:mm:ss}</green> <level>{extra[_level]: <5}</level> "
    "{message}{extra[_context]}\n{exception}"
)
_JOURNALD = "{extra[_priority]}{level: <7} {message}{extra[_context]}\n{exception}"
#: five-letter level names for the terminal
_SHORT_LEVELS: Mapping[str, str] = {"WARNING": "WARN", "CRITICAL": "CRIT", "SUCCESS": "OK"}
#: syslog priorities journald reads from a ``<N>`` line prefix (sd-daemon(3))
_PRIORITIES: Mapping[str, int] = {
    "TRACE": 7,
    "DEBUG": 7,
    "INFO": 6,
    "SUCCESS": 5,
    "WARNING": 4,
    "ERROR": 3,
    "CRITICAL": 2,
}
#: context keys a terminal line leaves out: the panel's header shows them
_TERMINAL_HIDDEN = frozenset({"symbol"})


def make_redactor(secrets: Sequence[str]) -> Callable[[str], str]:
    """A function replacing every given secret (and its JSON-escaped form) in a text."""
    variants: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LEN:
            variants.add(secret)
            variants.add(json.dumps(secret)[1:-1])
    if not variants:
        return lambda text: text
    # longest first, so a secret containing another is replaced whole
    pattern = re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)))
    return lambda text: pattern.sub(REDACTED, text)


def _context(record: Record, hidden: frozenset[str] = frozenset()) -> str:
    pairs = [
        f"{key}={value}"
        for key, value in record["extra"].items()
        if not key.startswith("_") and key not in hidden
    ]
    return "  " + " ".join(pairs) if pairs else ""


def _human_format(record: Record) -> str:
    record["extra"]["_context"] = _context(record)
    return _HUMAN


def _terminal_format(record: Record) -> str:
    name = record["level"].name
    record["extra"]["_level"] = _SHORT_LEVELS.get(name, name)[:5]
    record["extra"]["_context"] = _context(record, _TERMINAL_HIDDEN)
    return _TERMINAL


def _journald_format(record: Record) -> str:
    record["extra"]["_priority"] = f"<{_PRIORITIES.get(record['level'].name, 6)}>"
    record["extra"]["_context"] = _context(record)
    return _JOURNALD


def _exception_text(record: Record) -> str:
    exc = record["exception"]
    if exc is None or exc.type is None:
        return ""
    return "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))


def _rendered(fmt: str, redact: Callable[[str], str]) -> Callable[[Record], str]:
    """A format function for loguru's own file sink: the whole text rendered here and
    redacted (tracebacks included), since that sink gives us no final-text hook."""

    def format_record(record: Record) -> str:
        if fmt == "json":
            _json_format(record)
            text = record["extra"]["_json"] + "\n"
        else:
            stamp = record["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            text = (
                f"{stamp} {record['level'].name: <7} {record['message']}{_context(record)}\n"
                + _exception_text(record)
            )
        record["extra"]["_line"] = redact(text)
        return "{extra[_line]}"

    return format_record


def journald_is_the_log(stream: object, env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal stream systemd gave us (``JOURNAL_STREAM`` is
    ``device:inode`` of it) and not a terminal."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()) or _is_terminal(stream):
        return False
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
        stat = os.fstat(fileno)
    except (AttributeError, OSError, ValueError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def _json_format(record: Record) -> str:
    payload: dict[str, Any] = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        "name": record["name"],
    }
    for key, value in record["extra"].items():
        if not key.startswith("_") and key not in payload:
            payload[key] = value if isinstance(value, int | float | bool | None) else str(value)
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        import traceback

        payload["exception"] = "".join(
            traceback.format_exception(exc.type, exc.value, exc.traceback)
        ).rstrip()
    record["extra"]["_json"] = json.dumps(payload, ensure_ascii=False)
    # {exception} is deliberately absent: the traceback is inside the JSON object.
    return "{extra[_json]}\n"


class _RedactingSink:
    """A sink writing loguru's final text to a stream, secrets removed."""

    def __init__(self, stream: TextIO, redact: Callable[[str], str], *, owned: bool) -> None:
        self._stream = stream
        self._redact = redact
        self._owned = owned

    def write(self, message: Message) -> None:
        self._stream.write(self._redact(str(message)))

    def flush(self) -> None:
        self._stream.flush()

    def stop(self) -> None:
        """Called by loguru when the handler is removed: close a file we opened."""
        if self._owned:
            self._stream.close()


class _InterceptHandler(logging.Handler):
    """Hands every stdlib ``logging`` record to loguru, demoting the chatty ones.

    The record's level becomes loguru's level of the same name (custom levels keep
    their number), the caller found by walking out of ``logging``'s frames becomes the
    record's origin, an exception travels along, and the stdlib logger's name is bound
    as ``source`` so a line says where it came from. Redaction then happens in loguru
    exactly as for our own lines.
    """

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int = _demoted(record.name, record.levelno) or record.levelname
        try:
            logger.level(str(level))
        except ValueError:  # a level loguru does not know: keep its number
            level = record.levelno
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - logging must never raise; the args are dropped
            message = f"{record.msg} [log arguments could not be formatted]"
        frame: FrameType | None = sys._getframe(1)
        depth = 1
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        exc_info = record.exc_info if record.exc_info and record.exc_info[0] else None
        logger.bind(source=record.name).opt(depth=depth, exception=exc_info).log(level, message)


def _demoted(name: str, levelno: int) -> str | None:
    """The loguru level a record of logger ``name`` is moved to, or None."""
    for prefix, moves in _DEMOTE.items():
        if name == prefix or name.startswith(prefix + "."):
            return moves.get(levelno)
    return None


def _install_intercept(level_no: int, *, access_log: bool) -> None:
    """Route the stdlib root logger into loguru (replacing its handlers) at ``level_no``.

    Other root handlers are removed, not closed (they are not ours): left in place they
    would print the same lines a second time, unredacted. Levels are set on the stdlib
    loggers too, so records loguru would drop are not even created.
    """
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.addHandler(_InterceptHandler())
    root.setLevel(level_no)
    for name, moves in _DEMOTE.items():
        # the lowest stdlib level whose records still reach level_no after demotion
        lowest = next(
            (
                std
                for std in _STDLIB_LEVELS
                if (logger.level(moves[std]).no if std in moves else std) >= level_no
            ),
            logging.CRITICAL,
        )
        logging.getLogger(name).setLevel(lowest)
    access = logging.getLogger(_ACCESS_LOGGER)
    access.setLevel(logging.NOTSET if access_log else logging.WARNING)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def configure_logging(
    level: str,
    fmt: str,
    file: str | None,
    secrets: Sequence[str],
    *,
    stream: TextIO | None = None,
    access_log: bool = False,
    rotation: str | None = None,
    retention: str | int | None = None,
    compression: str | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Replace loguru's handlers: stderr (or ``stream``) and optionally ``file``.

    ``rotation``, ``retention`` and ``compression`` go to loguru's file sink as they
    are (a retention of digits only is a number of files). The stream's format is
    chosen by what it is: a terminal gets short lines, journald (``env``'s
    ``JOURNAL_STREAM``) lines without a timestamp, anything else the full line.

    ``level`` is a loguru level name (``INFO``, ...), ``fmt`` is ``"human"`` or
    ``"json"``. Every string in ``secrets`` is redacted from everything logged,
    including what libraries log through the stdlib ``logging`` module, which is routed
    here too. ``access_log`` turns hypercorn's per-request access lines on.
    Calling it again reconfigures from scratch.
    """
    if fmt not in ("human", "json"):
        raise ValueError(f"log format must be 'human' or 'json', got {fmt!r}")
    level = level.upper()
    level_no = logger.level(level).no  # ValueError for an unknown level, before any change
    redact = make_redactor(secrets)

    def patch(record: Record) -> None:
        record["message"] = redact(record["message"])
        extra = record["extra"]
        for key, value in extra.items():
            if isinstance(value, str):
                extra[key] = redact(value)

    logger.remove()
    logger.configure(patcher=patch)
    out = sys.stderr if stream is None else stream
    terminal = _is_terminal(out)
    formatter: Callable[[Record], str]
    if fmt == "json":
        formatter = _json_format
    elif terminal:
        formatter = _terminal_format
    elif journald_is_the_log(out, env):
        formatter = _journald_format
    else:
        formatter = _human_format
    logger.add(
        _RedactingSink(out, redact, owned=False),
        level=level,
        format=formatter,
        colorize=fmt == "human" and terminal,
        backtrace=False,
        diagnose=False,  # variable values in tracebacks could hold secrets
    )
    if file:
        if isinstance(retention, str) and retention.strip().isdigit():
            retention = int(retention)
        logger.add(
            file,
            level=level,
            format=_rendered(fmt, redact),
            colorize=False,
            backtrace=False,
            diagnose=False,
            encoding="utf-8",
            rotation=rotation or None,
            retention=retention or None,
            compression=compression or None,
        )
    _install_intercept(level_no, access_log=access_log)


def configure_from_settings(settings: Settings, *, stream: TextIO | None = None) -> None:
    """``configure_logging`` from the ``[log]`` settings, redacting the API secrets."""
    configure_logging(
        settings.log.level,
        settings.log.format,
        settings.log.file or None,
        settings.secrets(),
        stream=stream,
        rotation=settings.log.rotation,
        retention=settings.log.retention,
        compression=settings.log.compression,
    )
