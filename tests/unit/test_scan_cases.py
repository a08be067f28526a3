"""Data-driven scan recognizer cases: tests/cases/scan/<case>/.

input.txt      one scan per line: `<offset ms> <raw>`; `<GS>` stands for the GS character,
               lines starting with '#' are comments. An empty raw is written `<EMPTY>`.
case.toml      optional: profile = shipped name (default generic-tcp-scanner), default_location.
profile.toml   optional: a whole profile file, used instead of the named one.
expected.jsonl what comes out, in order: {"draft": {...}} or {"rejected": "<part of reason>", ...};
               an optional last line {"counters": {...}} is compared with the recognizer's counters.
"""

import json
import random
import tomllib
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device_profiles import ScannerProfile, load_profile_of
from edge_agent.readings import Scan
from edge_agent.recognizers.base import Output, Recognizer, Rejected, StateError, TxnDraft
from edge_agent.recognizers.scan import ScanRecognizer, wire_problem
from tests.conftest import CASES

CASE_DIRS = sorted(p for p in (CASES / "scan").iterdir() if p.is_dir())
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEVICE = "scanner-1"


def read_scans(path: Path) -> list[Scan]:
    scans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        offset, _, raw = line.partition(" ")
        raw = raw.replace("<GS>", "\x1d").replace("<EMPTY>", "")
        scans.append(Scan(device=DEVICE, raw=raw, at=T0 + timedelta(milliseconds=int(offset))))
    return scans


def ms(at: datetime) -> int:
    return (at - T0) // timedelta(milliseconds=1)


def render(output: Output) -> dict[str, Any]:
    if isinstance(output, Rejected):
        return {"rejected": output.reason, "raw": output.raw, "at_ms": ms(output.at)}
    assert isinstance(output, TxnDraft)
    fields = {
        "kind": output.kind.value,
        "qty": output.qty,
        "sku": output.sku,
        "gtin": output.gtin,
        "lot": output.lot,
        "expiry": output.expiry.isoformat() if output.expiry else None,
        "serials": list(output.serials) or None,
        "from": output.from_location,
        "to": output.to_location,
        "at_ms": ms(output.occurred_at),
        "symbology": output.evidence.symbology,
        "note": output.evidence.note,
    }
    return {"draft": {k: v for k, v in fields.items() if v is not None}}


def matches(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    if "rejected" in expected:
        return (
            "rejected" in actual
            and expected["rejected"] in actual["rejected"]
            and all(actual[k] == v for k, v in expected.items() if k != "rejected")
        )
    return actual == expected


def build(case: Path) -> ScanRecognizer:
    settings: dict[str, Any] = {}
    if (case / "case.toml").exists():
        settings = tomllib.loads((case / "case.toml").read_text(encoding="utf-8"))
    if (case / "profile.toml").exists():
        profile = load_profile_of(case / "profile.toml", ScannerProfile)
    else:
        profile = load_profile_of(settings.get("profile", "generic-tcp-scanner"), ScannerProfile)
    clock = lambda: T0  # noqa: E731 - the recognizer must not need the clock to move
    return ScanRecognizer(DEVICE, profile, clock, settings.get("default_location"))


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_case(case: Path) -> None:
    recognizer = build(case)
    actual = [render(o) for scan in read_scans(case / "input.txt") for o in recognizer.feed(scan)]
    actual += [render(o) for o in recognizer.tick()]
    expected = [json.loads(line) for line in (case / "expected.jsonl").read_text().splitlines()]
    counters = [e.pop("counters") for e in expected if "counters" in e]
    expected = [e for e in expected if e]
    assert len(actual) == len(expected), json.dumps(actual, indent=1)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert matches(a, e), f"output {i}: {json.dumps(a)} does not match {json.dumps(e)}"
    for wanted in counters:
        assert {k: asdict(recognizer.counters)[k] for k in wanted} == wanted


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_restored_snapshot_continues_like_an_uncut_run(case: Path) -> None:
    """Cut the input at every line: snapshot (through JSON), restore into a fresh recognizer,
    feed the rest. The outputs equal those of one uncut run, field for field."""
    scans = read_scans(case / "input.txt")
    whole = build(case)
    expected = [o for scan in scans for o in whole.feed(scan)] + list(whole.tick())
    for cut in range(len(scans) + 1):
        before = build(case)
        outputs = [o for scan in scans[:cut] for o in before.feed(scan)]
        state = json.loads(json.dumps(before.snapshot()))
        after = build(case)
        after.restore(state)
        assert after.snapshot() == state
        outputs += [o for scan in scans[cut:] for o in after.feed(scan)] + list(after.tick())
        assert outputs == expected, f"cut before line {cut}"


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"v": 2},
        {"v": 1, "mode": "TELEPORT", "loc": None, "to": None, "qty": None, "lot": None},
        {"v": 1, "mode": None, "loc": 5, "to": None, "qty": None, "lot": None, "count": None},
    ],
)
def test_a_state_that_does_not_fit_is_refused_and_changes_nothing(state: dict[str, Any]) -> None:
    recognizer = ScanRecognizer(
        DEVICE, load_profile_of("generic-tcp-scanner", ScannerProfile), lambda: T0
    )
    recognizer.feed(Scan(DEVICE, "SW:MODE:RECEIVE", T0))
    recognizer.feed(Scan(DEVICE, "SW:LOC:DOCK-1", T0))
    before = recognizer.snapshot()
    with pytest.raises(StateError, match=f"scan recognizer {DEVICE}"):
        recognizer.restore(state)
    assert recognizer.snapshot() == before
    (draft,) = recognizer.feed(Scan(DEVICE, "WIDGET-1", T0))
    assert isinstance(draft, TxnDraft)
    assert draft.to_location == "DOCK-1"


def test_there_are_enough_cases() -> None:
    assert len(CASE_DIRS) >= 20


ALPHABET = "0123456789" * 4 + "\x1d]CdQEe0134SW:MODELOCTQYAND-_.@ \x00\xff%^|/http"
STARTS = ["", "]C1", "]d2", "]Q3", "]E0", "]E4", "]e0", "]Q1https://x.y/01/", "SW:", "SW:QTY:"]
STARTS += ["01", "00", "02", "]C10109501101020917\x1d", "0109501101020917\x1d30"]
COMMANDS = ["SW:MODE:RECEIVE", "SW:MODE:COUNT", "SW:MODE:TRANSFER", "SW:LOC:A-01", "SW:TO:B-02"]
COMMANDS += ["SW:END", "SW:QTY:3", "SW:LOT:L1", "SW:CANCEL", "WIDGET-1", "4006381333931"]


@pytest.mark.parametrize("profile_name", ["generic-tcp-scanner", "generic-tcp-scanner-aim"])
def test_random_input_never_raises(profile_name: str) -> None:
    """Seeded random scans mixed with real commands: every scan yields drafts or rejections."""
    rng = random.Random(20260101)
    recognizer: Recognizer = ScanRecognizer(
        DEVICE, load_profile_of(profile_name, ScannerProfile), lambda: T0
    )
    outputs: list[Output] = []
    for i in range(3000):
        if i % 5 == 0:
            raw = ("]C0" if profile_name.endswith("aim") else "") + rng.choice(COMMANDS)
        else:
            tail = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
            raw = rng.choice(STARTS) + tail
        outputs += recognizer.feed(Scan(DEVICE, raw, T0 + timedelta(seconds=i)))
    drafts = [o for o in outputs if isinstance(o, TxnDraft)]
    assert drafts, "the mix of real commands and items should post something"
    assert all(wire_problem(d) is None for d in drafts)
    assert all(isinstance(o, TxnDraft | Rejected) for o in outputs)
