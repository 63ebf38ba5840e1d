"""structlog configuration: JSON lines with bound context, every event redacted, stdlib logs included.

`OPSBOT_LOG_LEVEL` is `LEVEL[,logger=LEVEL...]`. LEVEL is the threshold for opsbot's own events. Libraries
(APScheduler, botocore, urllib3, waitress, Bolt, slack_sdk, Alembic, ...) write only warnings and errors unless
LEVEL is DEBUG, or unless a logger is named: `INFO,apscheduler=INFO,botocore=DEBUG`. A name covers its children.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TextIO

import structlog
from structlog.typing import EventDict

from workflows.errors import ConfigError
from workflows.redaction import redaction_processor
from workflows.telemetry import current_ids

LIBRARY_LEVEL = logging.WARNING
# Our own packages, should any of them log through the standard library rather than structlog.
OWN_LOGGERS = ("opsbot", "bot", "workflows", "store", "adapters")
_LEVELS = MappingProxyType(
    {
        "DEBUG": logging.DEBUG,
        "INFO": logging.INFO,
        "WARNING": logging.WARNING,
        "ERROR": logging.ERROR,
        "WARN": logging.WARNING,
        "CRITICAL": logging.CRITICAL,
    }
)


@dataclass(frozen=True)
class LogLevels:
    """Thresholds: opsbot's events, libraries by default, and the libraries someone asked to hear."""

    own: int = logging.INFO
    libraries: int = LIBRARY_LEVEL
    named: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))


def _level(text: str, spec: str) -> int:
    try:
        return _LEVELS[text.strip().upper()]
    except KeyError:
        choices = ", ".join(n for n in _LEVELS if n not in ("WARN", "CRITICAL"))
        raise ConfigError(
            f"OPSBOT_LOG_LEVEL={spec!r}: {text.strip()!r} is not a level ({choices}); "
            "the form is LEVEL[,logger=LEVEL...], e.g. INFO,apscheduler=INFO"
        ) from None


def parse_levels(spec: str) -> LogLevels:
    """`INFO`, `DEBUG` (libraries too) or `INFO,apscheduler=INFO,botocore=DEBUG`; a bad spec is a ConfigError."""
    own, *pairs = spec.split(",")
    named: dict[str, int] = {}
    for pair in pairs:
        name, sep, level = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"OPSBOT_LOG_LEVEL={spec!r}: expected logger=LEVEL after the first comma, got {pair!r}")
        named[name.strip()] = _level(level, spec)
    threshold = _level(own, spec)
    libraries = logging.DEBUG if threshold == logging.DEBUG else LIBRARY_LEVEL
    return LogLevels(threshold, libraries, MappingProxyType(named))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """One JSON object per line on `stream` (stderr by default), for our events and for libraries' (Bolt, ...)."""
    levels = parse_levels(level)
    out = stream or sys.stderr
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redaction_processor,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(levels.own),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                add_trace_ids,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redaction_processor,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
        )
    )
    handler.addFilter(_Thresholds(levels))
    root = logging.getLogger()
    root.handlers = [handler]
    # The handler decides per logger; the root only lets through what some threshold may want. Bolt copies the
    # root's level into its loggers when an App is built, so deciding in the handler works for those too.
    root.setLevel(min(levels.own, levels.libraries, *levels.named.values()))
    logging.captureWarnings(True)  # warnings.warn(...) becomes a `py.warnings` JSON line, not bare stderr text
    threading.excepthook = _log_thread_crash


def add_trace_ids(_logger: object, _method: str, event: EventDict) -> EventDict:
    """`trace_id` and `span_id` of the span the line is written in (none when not tracing)."""
    event.update(current_ids())
    return event


class _Thresholds(logging.Filter):
    """Lets a stdlib record through when it reaches the threshold of its logger (longest named prefix wins)."""

    def __init__(self, levels: LogLevels) -> None:
        super().__init__()
        self.levels = levels
        self._by_name = sorted(levels.named.items(), key=lambda item: -len(item[0]))

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.threshold(record.name)

    def threshold(self, name: str) -> int:
        for prefix, level in self._by_name:
            if name == prefix or name.startswith(prefix + "."):
                return level
        return self.levels.own if name.split(".")[0] in OWN_LOGGERS else self.levels.libraries


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    """A thread that dies of an exception leaves one JSON line, not a bare traceback on stderr."""
    if args.exc_type is SystemExit:
        return
    structlog.get_logger("opsbot").error(
        "thread_crashed",
        thread=args.thread.name if args.thread else None,
        exc_info=args.exc_value or True,  # the hook runs inside the thread's except block
    )
