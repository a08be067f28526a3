"""Log lines as text (the default) or as one JSON object per line (`--log-format json`), and
which transaction a line is about.

A line about one transaction carries its id as `txn_id` (a batch: `txn_ids`) and the edge as
`edge`: given by `extra=about(...)` on the call, or by `context(...)` around work on one
transaction or edge (a contextvar, so tasks started inside inherit it). Text lines end with
`txn_id=... edge=...`; JSON lines have them as fields, next to ts (RFC 3339, UTC), level,
logger and message.
"""

import contextlib
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO
from uuid import UUID

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
ENV = "STOCKWIRE_LOG_FORMAT"
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Context fields, in the order text lines show them.
FIELDS = ("txn_id", "txn_ids", "edge")
TXN_IDS_MAX = 20  # ids named on one line about a batch; the rest are counted

_context: ContextVar[Mapping[str, object]] = ContextVar("stockwire_log_context")


def about(
    txn_ids: UUID | str | Iterable[UUID | str] | None = None, edge: str | None = None
) -> dict[str, object]:
    """The fields of a line about these transactions (one id, or a batch's) and edge."""
    fields: dict[str, object] = {}
    if isinstance(txn_ids, UUID | str):
        fields["txn_id"] = str(txn_ids)
    elif txn_ids is not None:
        ids = [str(i) for i in txn_ids]
        if len(ids) == 1:
            fields["txn_id"] = ids[0]
        elif ids:
            more = [f"+{len(ids) - TXN_IDS_MAX} more"] if len(ids) > TXN_IDS_MAX else []
            fields["txn_ids"] = ids[:TXN_IDS_MAX] + more
    if edge is not None:
        fields["edge"] = edge
    return fields


@contextlib.contextmanager
def context(
    txn_ids: UUID | str | Iterable[UUID | str] | None = None, edge: str | None = None
) -> Iterator[None]:
    """Every line logged inside (in this task, and tasks it starts) is about these."""
    token = _context.set({**_context.get({}), **about(txn_ids, edge)})
    try:
        yield
    finally:
        _context.reset(token)


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The context fields of a record: given by `extra=`, else by `context` (read in the
    logging call's own thread and task: handlers format synchronously)."""
    found = dict(_context.get({}))
    found.update((k, getattr(record, k)) for k in FIELDS if hasattr(record, k))
    return {k: found[k] for k in FIELDS if k in found}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tail = " ".join(f"{k}={_text(v)}" for k, v in fields_of(record).items())
        if not tail:
            return text
        first, newline, rest = text.partition("\n")  # a traceback stays after the fields
        return f"{first} {tail}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(fields_of(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _rfc3339(created: float) -> str:
    at = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return at.removesuffix("+00:00") + "Z"


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing `log_format` lines with context fields."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return out


def setup(level: str, log_format: LogFormat) -> None:
    """The program's logging: one handler on the root logger (replacing any)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level)
