"""GS1 syntax-engine vectors (processScanData, validateParity) against our biip wrapper.

In the vectors `^` is FNC1 in an expected data string; GS (\\x1d) separates fields in scan data.
"""

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from biip import ParseError
from biip.gtin import Gtin

from edge_agent.recognizers.gs1 import (
    Gs1Error,
    check_digit_ok,
    is_gs1,
    parse_gs1,
    split_symbology,
)

VECTORS = "gs1/gs1-syntax-engine-vectors.jsonl"

# Where our wrapper (biip 5) and the GS1 syntax engine disagree, on purpose or by limitation.
DISAGREE = {
    "]J0": "DotCode (]J) is unknown to biip's symbology table; our scanners do not read DotCode",
    "]J0TESTING": "DotCode (]J) is unknown to biip's symbology table",
    "]J0^TESTING": "DotCode (]J) is unknown to biip's symbology table",
    "]J0\\^TESTING": "DotCode (]J) is unknown to biip's symbology table",
    "]J0https://example.com/01/12312312312333?99=TEST": "DotCode (]J) is unknown to biip",
    "]J1011231231231233310ABC123\x1d99TESTING": "GS1 DotCode (]J1) is unknown to biip",
    "]E02112345678900|]e099COMPOSITE\x1d98XYZ": "composite symbols (linear|2D) are not supported",
    "]E402345673|]e099COMPOSITE\x1d98XYZ": "composite symbols (linear|2D) are not supported",
    "]XX": "biip knows AIM code 'X' (other barcode), so this splits as an empty non-GS1 scan; "
    "the recognizer then rejects it as an empty scan",
}


def load(testdata: Path, fn: str) -> list[dict[str, Any]]:
    lines = (testdata / VECTORS).read_text(encoding="utf-8").splitlines()
    return [v for v in map(json.loads, lines) if v["fn"] == fn]


def scan_vectors(testdata: Path) -> list[dict[str, Any]]:
    return [v for v in load(testdata, "processScanData") if v["scan_data"] not in DISAGREE]


def test_disagreements_are_real(testdata: Path) -> None:
    """Every listed disagreement is a vector that exists and that our wrapper gets 'wrong'."""
    by_data = {v["scan_data"]: v for v in load(testdata, "processScanData")}
    for scan_data in DISAGREE:
        vector = by_data[scan_data]
        assert vector["ok"] != _parsed_like_the_engine(vector), scan_data


def test_scan_vectors(testdata: Path) -> None:
    vectors = scan_vectors(testdata)
    assert len(vectors) >= 40
    wrong = [v["scan_data"] for v in vectors if _parsed_like_the_engine(v) != v["ok"]]
    assert wrong == []


@pytest.mark.parametrize("kind", ["good", "bad"])
def test_parity_vectors(testdata: Path, kind: str) -> None:
    vectors = [v for v in load(testdata, "validateParity") if v["kind"] == kind]
    assert len(vectors) == 4
    for vector in vectors:
        value = vector["value"]
        if kind == "good":
            assert parse_gs1(value).gtin14 == value.zfill(14)
        else:
            with pytest.raises(Gs1Error, match="check digit"):
                parse_gs1(value)


def _parsed_like_the_engine(vector: dict[str, Any]) -> bool:
    """True when our wrapper accepts the scan data and yields what the engine expects."""
    raw: str = vector["scan_data"]
    datastr: str = vector["expect_datastr"]
    try:
        symbology, data = split_symbology(raw)
        if not is_gs1(raw) or not data:
            # Not GS1 data: only the symbology split matters, and empty GS1 data is an error.
            return symbology is not None and data == _unescape(datastr) and not _gs1_sym(raw)
        parsed = parse_gs1(raw)
    except Gs1Error:
        return False
    if datastr.startswith("^"):
        flat = "".join(ai + value for ai, value in parsed.elements)
        return flat == datastr.replace("^", "")
    if re.match(r"^\d+$", datastr):
        return parsed.gtin14 == datastr.zfill(14)
    primary = re.search(r"/01/(\d{14})", datastr)
    return primary is not None and parsed.gtin14 == primary.group(1)


def _gs1_sym(raw: str) -> bool:
    return raw[:3] in {"]C1", "]e0", "]d2", "]Q3", "]J1", "]E0", "]E4"}


def _unescape(datastr: str) -> str:
    """The engine escapes a non-GS1 data string that starts with '^' or '\\^' with a backslash."""
    return datastr[1:] if datastr.startswith("\\") else datastr


def test_the_plain_gtin_fast_path_agrees_with_biip() -> None:
    """Seeded random GTIN-8/12/13/14 (some with leading zeros), every last digit: ours == biip's."""
    rng = random.Random(5)
    for _ in range(500):
        length = rng.choice((8, 12, 13, 14))
        zeros = rng.choice((0, 0, 1, 3, 6))
        body = "0" * zeros + "".join(rng.choice("0123456789") for _ in range(length - 1 - zeros))
        for last in "0123456789":
            digits = body + last
            try:
                theirs: str | None = Gtin.parse(digits).as_gtin_14()
            except ParseError:
                theirs = None
            assert check_digit_ok(digits) == (theirs is not None), digits
            if theirs is not None:
                assert parse_gs1(digits).gtin14 == theirs
                if length == 13:
                    assert parse_gs1(f"]E0{digits}").gtin14 == theirs
            else:
                with pytest.raises(Gs1Error, match="check digit"):
                    parse_gs1(digits)
