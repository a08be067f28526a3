"""Log lines as text or JSON, with the transaction (and edge) a line is about."""

import io
import json
import logging
import re
from collections.abc import Iterator
from uuid import UUID

import pytest

from stockwire import cli, logs

TXN = UUID("01890a5d-ac96-774b-bcce-b302099a8057")


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, list[logging.Handler]]]:
    out = io.StringIO()
    logger = logging.getLogger("test.stockwire.logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handlers: list[logging.Handler] = []
    try:
        yield logger, out, handlers
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.propagate = True


def use(logged: tuple[logging.Logger, io.StringIO, list[logging.Handler]], fmt: str) -> None:
    logger, out, handlers = logged
    handler = logs.handler("json" if fmt == "json" else "text", out)
    logger.addHandler(handler)
    handlers.append(handler)


def test_json_lines_carry_ts_level_logger_message_and_the_txn(
    logged: tuple[logging.Logger, io.StringIO, list[logging.Handler]],
) -> None:
    use(logged, "json")
    logger, out, _ = logged
    logger.warning("txn %s rejected: %s", TXN, "no", extra=logs.about(TXN, "edge1"))
    with logs.context(edge="edge2"):
        logger.info("plain")
        logger.info("batch", extra=logs.about([f"id{i}" for i in range(25)]))
    logger.info("outside")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra=logs.about(TXN))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 5
    first = lines[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first == {
        "ts": first["ts"],
        "level": "WARNING",
        "logger": "test.stockwire.logs",
        "message": f"txn {TXN} rejected: no",
        "txn_id": str(TXN),
        "edge": "edge1",
    }
    assert (lines[1]["edge"], "txn_id" in lines[1]) == ("edge2", False)
    assert lines[2]["txn_ids"] == [f"id{i}" for i in range(20)] + ["+5 more"]
    assert "edge" not in lines[3]
    assert lines[4]["txn_id"] == str(TXN)
    assert "ValueError: boom" in lines[4]["exc"]


def test_text_lines_are_as_before_with_the_txn_appended(
    logged: tuple[logging.Logger, io.StringIO, list[logging.Handler]],
) -> None:
    use(logged, "text")
    logger, out, _ = logged
    logger.info("no context")
    logger.info("rejected", extra=logs.about(TXN, "edge1"))
    plain, about = out.getvalue().splitlines()
    assert re.fullmatch(r"\S+ \S+ INFO test\.stockwire\.logs: no context", plain)
    assert about.endswith(f"INFO test.stockwire.logs: rejected txn_id={TXN} edge=edge1")


def test_the_cli_takes_the_log_format_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli._parser().parse_args(["schema"]).log_format == "text"
    assert cli._parser().parse_args(["--log-format", "json", "schema"]).log_format == "json"
    monkeypatch.setenv(logs.ENV, "json")
    assert cli._parser().parse_args(["schema"]).log_format == "json"
    monkeypatch.setenv(logs.ENV, "yaml")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["schema"])
    assert exit_.value.code == 2
