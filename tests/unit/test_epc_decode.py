"""EPC decoding against epcpy's own vectors (../shared/testdata/epc) and hand-broken EPCs."""

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from edge_agent.recognizers.epc import (
    EpcDecoder,
    EpcMapError,
    Mapped,
    Sgtin,
    Sscc,
    UnknownEpc,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared/testdata/epc/epcpy-vectors.jsonl"
GRAI_KEY = "urn:epc:id:grai:0614141.12345."


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


def _encoded() -> list[dict[str, Any]]:
    """Valid hex vectors, each with the GS1 key its pure identity URI has (when given)."""
    rows = _rows()
    keys = {r["uri"]: r["gs1_key"] for r in rows if "gs1_key" in r and not r.get("kwargs")}
    return [{**r, "key": keys.get(r["uri"])} for r in rows if "hex" in r]


ENCODED = _encoded()


def test_the_vectors_cover_the_schemes_we_decode() -> None:
    schemes = {r["scheme"] for r in ENCODED}
    assert {"SGTIN", "SSCC", "GRAI"} <= schemes
    assert len(ENCODED) >= 70


@pytest.mark.parametrize("row", ENCODED, ids=[r["name"] for r in ENCODED])
def test_every_valid_hex_vector_decodes(row: dict[str, Any]) -> None:
    decoded = EpcDecoder({GRAI_KEY: "PALLET-BLUE"}).decode(row["hex"])
    match row["scheme"]:
        case "SGTIN":
            assert isinstance(decoded, Sgtin)
            if row["key"] is not None:
                assert decoded.gtin14 == row["key"]
            assert decoded.serial == unquote(row["uri"].split(".", 2)[2])
        case "SSCC":
            assert isinstance(decoded, Sscc)
            assert decoded.sscc18 == row["key"]
        case "GRAI" if row["uri"].startswith(GRAI_KEY):
            assert decoded == Mapped("PALLET-BLUE", GRAI_KEY)
        case scheme:
            assert decoded == UnknownEpc(scheme, f"{row['uri']} matches no key of the epc map")


def test_sgtin_96_and_198_give_gtin14_and_the_unescaped_serial() -> None:
    decoder = EpcDecoder({})
    assert decoder.decode("30C579D5D4ADB60000000000") == Sgtin("85071219236581", "0")
    sgtin_198 = "362579D5D4ADB6172574B98B34C0000000000000000000000000"
    assert decoder.decode(sgtin_198) == Sgtin("85071219236581", ".%:.13&")


def test_sscc_is_a_container() -> None:
    assert EpcDecoder({}).decode("3154257BF4499602D2000000") == Sscc("106141412345678908")


def test_hex_prefix_keys_map_non_gs1_epcs_and_the_longest_key_wins() -> None:
    decoder = EpcDecoder({"E280": "GENERIC", "E28011": "TOTE-RED"})
    assert decoder.decode("E2801160600002AB") == Mapped("TOTE-RED", "E28011")
    assert decoder.decode("E2809999") == Mapped("GENERIC", "E280")


def test_a_uri_key_does_not_map_an_sgtin_away_from_its_gtin() -> None:
    decoder = EpcDecoder({"urn:epc:id:sgtin:": "NOPE"})
    assert isinstance(decoder.decode("30C579D5D4ADB60000000000"), Sgtin)


BROKEN = [
    ("partition-7", "30FF79D5D4ADB60000000000", "SGTIN", "partition"),
    ("sgtin-truncated", "30C579D5D4ADB6000000000", "SGTIN", "binary size"),
    ("sscc-truncated", "3154257BF4499602", "SSCC", "binary size"),
    ("unknown-header", "E2801160600002AB", None, "header E2 is no EPC TDS scheme"),
    ("too-short", "3000", None, "not 8..124"),
    ("lower-case", "30c579d5d4adb60000000000", None, "upper-case"),
    ("not-hex", "30C579D5D4ADB6000000000G", None, "upper-case hex"),
    ("empty", "", None, "not 8..124"),
]


@pytest.mark.parametrize(
    ("epc", "scheme", "reason"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_epcs_are_unknown_with_a_reason_never_an_exception(
    epc: str, scheme: str | None, reason: str
) -> None:
    decoded = EpcDecoder({}).decode(epc)
    assert isinstance(decoded, UnknownEpc)
    assert decoded.scheme == scheme
    assert reason.lower() in decoded.reason.lower()


INVALID_URIS = [r for r in _rows() if not r["expect_valid"] and r["scheme"] in {"SGTIN", "SSCC"}]


@pytest.mark.parametrize("row", INVALID_URIS, ids=[r["name"] for r in INVALID_URIS])
def test_invalid_vectors_never_become_items(row: dict[str, Any]) -> None:
    """An invalid pure identity cannot be encoded, so its bytes, if forged, stay unknown:
    the URI's text as hex (what a confused reader might send) decodes to no item."""
    forged = row["uri"].encode().hex().upper()[:124]
    assert isinstance(EpcDecoder({}).decode(forged), UnknownEpc)


@pytest.mark.parametrize("key", ["urn:epc:tag:grai-96:", "e28011", "E2 80", ""])
def test_a_bad_map_key_fails_at_start(key: str) -> None:
    with pytest.raises(EpcMapError, match="epc map key"):
        EpcDecoder({key: "SKU-1"})


def test_a_bad_map_sku_fails_at_start() -> None:
    with pytest.raises(EpcMapError, match="sku"):
        EpcDecoder({"E280": "has space"})


def test_decodes_are_cached_and_the_cache_is_bounded() -> None:
    decoder = EpcDecoder({}, cache_entries_max=2)
    first = decoder.decode("30C579D5D4ADB60000000000")
    assert decoder.decode("30C579D5D4ADB60000000000") is first
    decoder.decode("3154257BF4499602D2000000")
    decoder.decode("E2801160600002AB")
    assert len(decoder._cache) <= 2
