"""The portal recognizer on handcrafted read sequences (tests/cases/portal/<case>/).

reads.csv: `t_s,epc,antenna,rssi_dbm,phase_deg` (t_s from T0; epc an alias below or hex);
expected.json: the drafts in the order they come out (only the keys given are compared; `load`
numbers the distinct load ids), rejected reasons (substrings), counters, and optional
`profile` overrides and `epc_map`. The clock is injected and moves with the reads (a tick every
100 ms of sim time), so nothing sleeps.
"""

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device_profiles import PortalProfile, load_profile_of
from edge_agent.readings import Scan, TagRead
from edge_agent.recognizers.base import Output, Recognizer, Rejected, StateError, TxnDraft
from edge_agent.recognizers.portal import PortalRecognizer
from edge_agent.recognizers.scan import wire_problem

CASES = Path(__file__).resolve().parents[1] / "cases" / "portal"
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
DEVICE, DOOR = "portal-1", "DOCK-1"
TICK = timedelta(milliseconds=100)
AFTER_S = 10.0
DELAY_S_MAX = 3.0  # the target: a transaction <= 3 s after the load leaves the field
ALIASES = {
    **{f"A{n}": f"3034F4E4E40000400000000{n}" for n in range(1, 4)},  # GTIN 04012345000016
    **{f"S{n}": f"3034F4E4E40000400000001{n}" for n in range(1, 3)},  # same GTIN, strays
    **{f"B{n}": f"3034F4E4E40000800000000{n}" for n in range(1, 3)},  # GTIN 04012345000023
    "P1": "3154F4E4E400000001000000",  # SSCC 040123450000000016
    "G1": "33B4257BF40C0E4000000190",  # GRAI urn:epc:id:grai:0614141.12345.400
    "U1": "E2801160600002AB",  # no GS1 scheme, in no table
}
HEX = {v: k for k, v in ALIASES.items()}
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "reads.csv").exists())


def reads_of(case: str) -> list[TagRead]:
    lines = (CASES / case / "reads.csv").read_text().splitlines()
    rows = csv.reader(line for line in lines if line and not line.startswith("#"))
    return [
        TagRead(
            device=DEVICE,
            epc=ALIASES.get(epc, epc),
            antenna=int(antenna),
            rssi_dbm=float(rssi),
            at=T0 + timedelta(seconds=float(t_s)),
            phase_deg=float(phase) if phase else None,
        )
        for t_s, epc, antenna, rssi, phase in rows
    ]


def expected_of(case: str) -> dict[str, Any]:
    return dict(json.loads((CASES / case / "expected.json").read_text()))


def build(expected: dict[str, Any], clock: Callable[[], datetime]) -> PortalRecognizer:
    shipped = load_profile_of("dock-door-portal", PortalProfile)
    profile = PortalProfile.model_validate({**shipped.model_dump(), **expected.get("profile", {})})
    return PortalRecognizer(DEVICE, profile, DOOR, expected.get("epc_map", {}), clock)


class Sim:
    """Sim time: the clock the recognizer sees; ticks every 100 ms up to each read."""

    def __init__(self) -> None:
        self.now = T0
        self.next_tick = T0 + TICK

    def clock(self) -> datetime:
        return self.now

    def until(self, at: datetime, recognizer: Recognizer) -> Iterator[tuple[datetime, Output]]:
        while self.next_tick <= at:
            self.now = self.next_tick
            yield from ((self.now, o) for o in recognizer.tick())
            self.next_tick += TICK
        self.now = max(self.now, at)


def run(
    case: str, cut_at: int | None = None
) -> tuple[list[tuple[datetime, Output]], PortalRecognizer]:
    """Feed a case; with `cut_at`, the recognizer is rebuilt from its JSON snapshot there."""
    expected, sim = expected_of(case), Sim()
    recognizer = build(expected, sim.clock)
    reads = reads_of(case)
    out: list[tuple[datetime, Output]] = []
    for i, read in enumerate(reads):
        if i == cut_at:
            state = json.loads(json.dumps(recognizer.snapshot()))
            recognizer = build(expected, sim.clock)
            recognizer.restore(state)
        out.extend(sim.until(read.at, recognizer))
        out.extend((sim.now, o) for o in recognizer.feed(read))
    out.extend(sim.until(reads[-1].at + timedelta(seconds=AFTER_S), recognizer))
    return out, recognizer


def as_expected(draft: TxnDraft, loads: list[str], keys: set[str]) -> dict[str, Any]:
    load = str(draft.load_id)
    if load not in loads:
        loads.append(load)
    got: dict[str, Any] = {
        "load": loads.index(load),
        "kind": draft.kind.value,
        "gtin": draft.gtin,
        "sku": draft.sku,
        "qty": draft.qty,
        "epcs": [HEX.get(e, e) for e in draft.epcs],
        "serials": list(draft.serials),
        "to_location": draft.to_location,
        "from_location": draft.from_location,
        "containers": list(draft.evidence.containers),
        "reads_by_zone": draft.evidence.reads_by_zone,
    }
    return {k: v for k, v in got.items() if k in keys}


@pytest.mark.parametrize("case", CASE_NAMES)
def test_case_gives_the_expected_outputs(case: str) -> None:
    expected = expected_of(case)
    outputs, recognizer = run(case)
    drafts = [(at, o) for at, o in outputs if isinstance(o, TxnDraft)]
    loads: list[str] = []
    want = expected["drafts"]
    got = [as_expected(d, loads, set(w)) for (_, d), w in zip(drafts, want, strict=False)]
    assert got == [{k: v for k, v in w.items() if not k.startswith("confidence")} for w in want]
    assert len(drafts) == len(want), [d for _, d in drafts]
    for (_, draft), w in zip(drafts, want, strict=True):
        assert draft.confidence >= w.get("confidence_min", 0.0)
        assert draft.confidence <= w.get("confidence_max", 1.0)
    rejected = [o.reason for _, o in outputs if isinstance(o, Rejected)]
    assert len(rejected) == len(expected.get("rejected", [])), rejected
    for reason, part in zip(rejected, expected.get("rejected", []), strict=True):
        assert part in reason
    counters = asdict(recognizer.counters)
    assert {k: counters[k] for k in expected.get("counters", {})} == expected.get("counters", {})


@pytest.mark.parametrize("case", CASE_NAMES)
def test_every_draft_passes_the_wire_contract_soon_after_its_load_left(case: str) -> None:
    outputs, _ = run(case)
    for at, o in outputs:
        if isinstance(o, TxnDraft):
            assert wire_problem(o) is None
            assert o.evidence.last_seen_at == o.occurred_at
            assert o.evidence.first_seen_at is not None
            assert o.evidence.first_seen_at <= o.occurred_at
            if "late" not in (o.evidence.note or ""):
                assert (at - o.occurred_at).total_seconds() <= DELAY_S_MAX


@pytest.mark.parametrize("case", CASE_NAMES)
def test_a_restart_mid_pass_gives_the_outputs_of_an_uncut_run(case: str) -> None:
    uncut, _ = run(case)
    reads = len(reads_of(case))
    for cut in sorted({1, reads // 3, reads // 2, reads - 1}):
        resumed, _ = run(case, cut_at=cut)
        assert [o for _, o in resumed] == [o for _, o in uncut], f"cut at read {cut}"


def test_a_fast_replay_with_a_stuck_clock_decides_like_the_live_run() -> None:
    """After a restart, readings replay much faster than real time while the stage keeps
    ticking: event time, not the wall clock, must decide when passes end."""
    live, _ = run("two_close_loads")
    stuck = T0 + timedelta(hours=1)
    now = [stuck]
    recognizer = build(expected_of("two_close_loads"), lambda: now[0])
    out: list[Output] = []
    for read in reads_of("two_close_loads"):
        out.extend(recognizer.feed(read))
        out.extend(recognizer.tick())
    now[0] = stuck + timedelta(seconds=AFTER_S)
    out.extend(recognizer.tick())
    assert out == [o for _, o in live]


def test_the_load_id_is_the_same_on_another_run() -> None:
    first, _ = run("inbound")
    again, _ = run("inbound")
    ids = {o.load_id for _, o in first if isinstance(o, TxnDraft)}
    assert len(ids) == 1
    assert ids == {o.load_id for _, o in again if isinstance(o, TxnDraft)}


def test_the_snapshot_is_bounded_by_tags_tracked_max() -> None:
    sim = Sim()
    profile = PortalProfile(kind="rfid-portal", name="p", tags_tracked_max=50)
    recognizer = PortalRecognizer(DEVICE, profile, DOOR, {}, sim.clock)
    for i in range(2000):
        at = T0 + timedelta(milliseconds=i)
        recognizer.feed(TagRead(DEVICE, f"3034F4E4E4000040{i:08X}", 1 + i % 4, -55.0, at))
    state = recognizer.snapshot()
    assert len(state["tags"]) <= 50
    assert recognizer.counters.evicted >= 1950
    assert len(json.dumps(state)) < 50 * 700  # bytes: about 550 a tag


def test_not_a_tag_read_is_rejected() -> None:
    recognizer = build({}, lambda: T0)
    (out,) = recognizer.feed(Scan(DEVICE, "SW:MODE:RECEIVE", T0))
    assert isinstance(out, Rejected)
    assert out.reason == "not an RFID tag read"


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.update(v=99),
        lambda s: s.update(tags=[["3034F4E4E400004000000001", 1.0]]),
        lambda s: s.update(counters={"reads": 1}),
        lambda s: s.update(recent=[["not-a-uuid", "in", [0, 1], -60, 1.0, []]]),
        lambda s: s.pop("now"),
    ],
)
def test_a_damaged_state_is_refused_and_changes_nothing(
    damage: Callable[[dict[str, Any]], None],
) -> None:
    _, recognizer = run("inbound", cut_at=20)
    before = recognizer.snapshot()
    state = json.loads(json.dumps(before))
    damage(state)
    with pytest.raises(StateError):
        recognizer.restore(state)
    assert recognizer.snapshot() == before
