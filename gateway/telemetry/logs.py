"""Log lines as text or as JSON (`GATEWAY_LOG_FORMAT`), every one carrying its request's id.

`logging_config` is handed to uvicorn, which applies it in the server process (and in each worker
process it starts), so its own lines, the gateway's and the libraries' all take one shape.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson

from gateway.telemetry.request_ids import REQUEST_ID

__all__ = ["LogFormat", "JsonFormatter", "RequestIdFilter", "log_handler", "logging_config"]

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Attributes every record has; any other came from `extra=` and is a field of its own in JSON
# (but uvicorn's copy of its message with terminal colours).
_NOT_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "color_message"}


class RequestIdFilter(logging.Filter):
    """Copies the id of the request being handled (or "-") onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id, the record's extra
    fields, and the exception's traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
        }
        for key, value in record.__dict__.items():
            if key not in _NOT_FIELDS:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def log_handler(log_format: LogFormat, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing `log_format` lines to `stream` (stderr), each with its request's id."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def logging_config(log_format: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration: records at INFO and above, to stderr, in
    `log_format` (pgserver's only from WARNING: it narrates every command it runs)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"()": log_handler, "log_format": log_format}},
        "loggers": {"pgserver": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }
