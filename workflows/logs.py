"""structlog configuration: JSON lines with bound context, every event redacted, stdlib logs included."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from workflows.redaction import redaction_processor


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """One JSON object per line on `stream` (stderr by default), for our events and for libraries' (Bolt, ...)."""
    out = stream or sys.stderr
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redaction_processor,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
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
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("werkzeug", "urllib3", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
