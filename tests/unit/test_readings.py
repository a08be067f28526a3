from datetime import UTC, datetime

import pytest

from edge_agent.readings import (
    ReadingFormatError,
    Scan,
    TagRead,
    Unreadable,
    WeightSample,
    from_journal_row,
    journal_row,
)

AT = datetime(2026, 11, 29, 7, 30, 1, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "reading",
    [
        Scan("scan-1", "]C1010400638133393110J2611A", AT),
        TagRead("door-1", "3034257BF7194E4000001A85", 2, -58.5, AT),
        TagRead(
            "door-1",
            "E2801160600002054E1C0A9F",
            4,
            -71.25,
            AT,
            first_at=datetime(2026, 11, 29, 7, 30, 0, 900001, tzinfo=UTC),
            seen_count=17,
            phase_deg=187.03,
        ),
        WeightSample("shelf-c", "lane-1", 1234.5678, AT, stable=True),
        WeightSample("shelf-c", "lane-2", -0.25, AT, stable=False),
        WeightSample("shelf-c", "lane-3", 0.1 + 0.2, AT),
        Unreadable("scan-1", "XX\nY\r", "line of 5000 bytes is over max_line_bytes 4096", AT),
    ],
)
def test_journal_row_round_trip(reading: Scan | TagRead | WeightSample | Unreadable) -> None:
    kind, at_us, payload = journal_row(reading)
    assert from_journal_row(reading.device, kind, at_us, payload) == reading


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("weight", "1.0"),
        ("weight", "lane-1 12.5 yes"),
        ("weight", "lane-1 x 1"),
        ("tag", "3034257BF7194E4000001A85 2 -58.5"),
        ("tag", "x y z 1 2 3"),
        ("unreadable", "a reason without the raw part"),
    ],
)
def test_bad_journal_rows_raise_format_errors(kind: str, payload: str) -> None:
    with pytest.raises(ValueError):  # ReadingFormatError is a ValueError
        from_journal_row("door-1", kind, 0, payload)


def test_unknown_kind_names_the_device() -> None:
    with pytest.raises(ReadingFormatError, match=r"door-1.*'pressure'"):
        from_journal_row("door-1", "pressure", 0, "1.0")
