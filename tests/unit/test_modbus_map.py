"""Read planning and decoding of weighing transmitters, from hand-computed registers."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from device_profiles import load_profile_of
from device_profiles.weighing import WeighingProfile
from edge_agent.settings import CellRef, LaneConfig
from edge_agent.sources.modbus_map import (
    CellError,
    CellValue,
    ReadRequest,
    RegisterKey,
    decode_cell,
    lane_samples,
    plan_reads,
    register_values,
)
from edge_agent.sources.modbus_units import UnitHealth

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def _shipped(name: str) -> WeighingProfile:
    return load_profile_of(name, WeighingProfile)


def _profile(**changes: Any) -> WeighingProfile:
    data: dict[str, Any] = {
        "kind": "weighing-transmitter",
        "name": "test",
        "vendor": "test",
        "model": "test",
        "transports": ["tcp"],
        "weight": {"address": 0, "type": "INT32"},
    }
    data.update(changes)
    return WeighingProfile.model_validate(data)


def _holding(start: int, *values: int) -> dict[RegisterKey, int]:
    return {("holding", start + i): v for i, v in enumerate(values)}


# --- planning ----------------------------------------------------------------------------------


def test_laumas_is_one_read_of_status_and_weight_at_wire_offset_6() -> None:
    # 40007 (status), 40008/40009 (gross): 1-based numbers 7..9 are wire offsets 6..8
    assert plan_reads(_shipped("laumas-w100"), [1]) == (ReadRequest("holding", 6, 3),)


def test_pt113_reads_status_tare_and_gross_in_one_request() -> None:
    assert plan_reads(_shipped("pt113"), [1]) == (ReadRequest("holding", 2, 5),)


def test_a_wide_gap_is_two_reads_a_narrow_one_is_merged() -> None:
    seneca = _shipped("seneca-z-sg")  # weight at wire 63/64, status at 77: 12 unused between
    assert plan_reads(seneca, [1]) == (
        ReadRequest("holding", 63, 2),
        ReadRequest("holding", 77, 1),
    )
    assert plan_reads(seneca, [1], gap_registers_max=12) == (ReadRequest("holding", 63, 15),)


def test_channel_stride_places_each_channel() -> None:
    generic = _shipped("generic-rs485-4ch")  # INT32 per channel at 0, 2, 4, 6
    assert plan_reads(generic, [4]) == (ReadRequest("holding", 6, 2),)
    assert plan_reads(generic, [1, 3]) == (ReadRequest("holding", 0, 6),)
    assert plan_reads(generic, [1, 3], gap_registers_max=1) == (
        ReadRequest("holding", 0, 2),
        ReadRequest("holding", 4, 2),
    )
    assert plan_reads(generic, [1, 2, 3, 4]) == (ReadRequest("holding", 0, 8),)


def test_registers_per_read_max_splits_reads() -> None:
    profile = _profile(channels=8, channel_stride=2, registers_per_read_max=5)
    assert plan_reads(profile, range(1, 9)) == (
        ReadRequest("holding", 0, 4),
        ReadRequest("holding", 4, 4),
        ReadRequest("holding", 8, 4),
        ReadRequest("holding", 12, 4),
    )


def test_register_types_are_read_apart_input_with_fc04() -> None:
    profile = _profile(
        channels=2,
        channel_stride=20,
        weight={"register": "input", "address": 100, "type": "FLOAT32"},
        status={"address": 1, "stable_bit": 0},
    )
    requests = plan_reads(profile, [1, 2])
    assert requests == (
        ReadRequest("holding", 1, 1),
        ReadRequest("holding", 21, 1),
        ReadRequest("input", 100, 2),
        ReadRequest("input", 120, 2),
    )
    assert [r.function for r in requests] == ["FC03", "FC03", "FC04", "FC04"]
    assert requests[2].describe(7) == "unit 7 FC04 at 100 x2"


def test_one_based_addresses_are_one_below_on_the_wire() -> None:
    zero = _profile(weight={"address": 8, "type": "UINT16"})
    one = _profile(address_base=1, weight={"address": 8, "type": "UINT16"})
    assert plan_reads(zero, [1]) == (ReadRequest("holding", 8, 1),)
    assert plan_reads(one, [1]) == (ReadRequest("holding", 7, 1),)


# --- decoding every shipped profile ---------------------------------------------------------


@pytest.mark.parametrize("name", ["laumas-w100", "laumas-tlb4"])
def test_laumas_sign_is_bit_7_of_the_status(name: str) -> None:
    profile = _shipped(name)
    stable_negative = (1 << 11) | (1 << 7)  # 0x0880
    registers = _holding(6, stable_negative, 0, 1234)
    assert decode_cell(profile, registers, 1) == CellValue(grams=-1234.0, stable=True)
    registers = _holding(6, 0, 1, 4464)  # 70000 = 1 * 65536 + 4464, high word first
    assert decode_cell(profile, registers, 1) == CellValue(grams=70000.0, stable=False)


@pytest.mark.parametrize(("bit", "meaning"), [(0, "load cell"), (1, "ADC"), (4, "over 999999")])
def test_laumas_error_bits_leave_no_weight(bit: int, meaning: str) -> None:
    with pytest.raises(CellError, match=f"error bit\\(s\\) {bit} set"):
        decode_cell(_shipped("laumas-w100"), _holding(6, 1 << bit, 0, 5), 1)


def test_seneca_kg_float_is_grams_in_either_word_order() -> None:
    seneca = _shipped("seneca-z-sg")
    # -2.5 kg = 0xC0200000; status 40078 (wire 77) bit 4 = stable
    abcd = {**_holding(63, 0xC020, 0x0000), **_holding(77, 0x0010)}
    assert decode_cell(seneca, abcd, 1) == CellValue(grams=-2500.0, stable=True)
    swapped = seneca.model_copy(
        update={"weight": seneca.weight.model_copy(update={"byte_order": "CDAB"})}
    )
    cdab = {**_holding(63, 0x0000, 0xC020), **_holding(77, 0x0000)}
    assert decode_cell(swapped, cdab, 1) == CellValue(grams=-2500.0, stable=False)
    full_scale = {**_holding(63, 0x3F00, 0x0000), **_holding(77, 0x0012)}
    with pytest.raises(CellError, match="error bit\\(s\\) 1 set"):
        decode_cell(seneca, full_scale, 1)


def test_seneca_nan_is_no_weight() -> None:
    nan = {**_holding(63, 0x7FC0, 0x0000), **_holding(77, 0x0010)}
    with pytest.raises(CellError, match="weight is nan"):
        decode_cell(_shipped("seneca-z-sg"), nan, 1)


@pytest.mark.parametrize("name", ["pt113", "baykon-mx08"])
def test_pt113_map_ok_bit_motion_bit_and_error_code(name: str) -> None:
    profile = _shipped(name)
    gross = (0xFFFF, 0xFA24)  # -1500 as INT32, high word first, in 40006/40007
    ok_still = _holding(2, 0b010, 0, 0, *gross)  # D1 data OK, D2 (unstable) clear
    assert decode_cell(profile, ok_still, 1) == CellValue(grams=-1500.0, stable=True)
    ok_moving = _holding(2, 0b110, 0, 0, *gross)
    assert decode_cell(profile, ok_moving, 1) == CellValue(grams=-1500.0, stable=False)
    with pytest.raises(CellError, match="data-OK bit 1 clear"):
        decode_cell(profile, _holding(2, 0b000, 0, 0, *gross), 1)
    overload = 2 << 13  # error code 2 in D13..D15
    with pytest.raises(CellError, match="error bit\\(s\\) 14 set"):
        decode_cell(profile, _holding(2, overload | 0b010, 0, 0, *gross), 1)


def test_generic_module_has_no_stable_bit_and_reads_each_channel() -> None:
    generic = _shipped("generic-rs485-4ch")
    registers = _holding(0, 0, 100, 0xFFFF, 0xFF38, 0, 0, 0x0001, 0x0000)
    grams = [decode_cell(generic, registers, ch) for ch in (1, 2, 3, 4)]
    assert grams == [
        CellValue(100.0, None),
        CellValue(-200.0, None),
        CellValue(0.0, None),
        CellValue(65536.0, None),
    ]


def test_scale_and_offset() -> None:
    profile = _profile(weight={"address": 0, "type": "INT16", "scale": 10.0, "offset": -5.0})
    assert decode_cell(profile, _holding(0, 123), 1).grams == 1225.0


def test_a_register_not_read_is_a_cell_error() -> None:
    with pytest.raises(CellError, match="holding register 8 was not read"):
        decode_cell(_shipped("laumas-w100"), _holding(6, 0, 0), 1)


def test_register_values_maps_answers_by_wire_offset() -> None:
    answers = [(ReadRequest("holding", 6, 3), [1, 2, 3]), (ReadRequest("input", 6, 1), [9])]
    assert register_values(answers) == {
        ("holding", 6): 1,
        ("holding", 7): 2,
        ("holding", 8): 3,
        ("input", 6): 9,
    }
    with pytest.raises(CellError, match="3 registers asked, 2 answered"):
        register_values([(ReadRequest("holding", 6, 3), [1, 2])])


# --- lanes -----------------------------------------------------------------------------------


def lane(lane_id: str, *cells: tuple[int, int]) -> LaneConfig:
    return LaneConfig(
        id=lane_id,
        location=f"A-{lane_id}",
        sku="SKU-1",
        unit_weight_g=100.0,
        cells=tuple(CellRef(unit=u, channel=c) for u, c in cells),
    )


def test_lanes_sum_their_cells_and_are_stable_only_when_all_are() -> None:
    lanes = [lane("plate", (1, 1), (2, 1)), lane("one", (1, 2))]
    cells = {
        (1, 1): CellValue(1000.25, True),
        (2, 1): CellValue(-0.25, False),
        (1, 2): CellValue(50.0, True),
    }
    read_at = {1: T0, 2: T0 + timedelta(milliseconds=30)}
    outcome = lane_samples("shelf-1", lanes, cells, read_at)
    assert outcome.left_out == {}
    plate, one = outcome.samples
    assert (plate.lane, plate.grams, plate.stable, plate.at) == ("plate", 1000.0, False, read_at[2])
    assert (one.lane, one.grams, one.stable, one.at) == ("one", 50.0, True, T0)


def test_a_lane_with_a_failed_cell_is_left_out_with_the_reason() -> None:
    lanes = [lane("plate", (1, 1), (2, 1)), lane("ok", (1, 2))]
    cells: dict[tuple[int, int], CellValue | CellError] = {
        (1, 1): CellValue(10.0, None),
        (2, 1): CellError("unit 2 FC03 at 6 x3: no answer within 300 ms"),
        (1, 2): CellValue(20.0, None),
    }
    outcome = lane_samples("shelf-1", lanes, cells, {1: T0})
    assert [s.lane for s in outcome.samples] == ["ok"]
    assert outcome.samples[0].stable is None
    assert outcome.left_out == {"plate": "unit 2 FC03 at 6 x3: no answer within 300 ms"}


# --- unit backoff ----------------------------------------------------------------------------


class _FixedBackoff:
    def __init__(self) -> None:
        self.resets = 0

    def next_s(self) -> float:
        return 5.0

    def reset(self) -> None:
        self.resets += 1


def test_a_unit_backs_off_after_n_failures_and_comes_back_when_it_answers() -> None:
    backoff = _FixedBackoff()
    health = UnitHealth(3, failures_before_backoff_max=2, backoff=backoff)  # type: ignore[arg-type]
    assert health.due(0.0)
    health.failed("timeout", 1.0)
    assert health.due(1.1)  # one failure: tried again next cycle
    health.failed("timeout", 2.0)
    assert not health.due(6.9)
    assert health.due(7.0)
    assert health.describe() == "unit 3 failing x2 (timeout)"
    health.answered()
    assert (health.answering, health.due(7.0), backoff.resets) == (True, True, 1)


async def test_a_cancel_that_python_311_wait_for_swallowed_is_raised_again() -> None:
    from edge_agent.sources.modbus_shelf import _reraise_lost_cancel

    answered = asyncio.Event()

    async def request() -> str:
        with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for may
            await answered.wait()
        _reraise_lost_cancel()
        return "polled on"

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    calm = asyncio.create_task(request())
    await asyncio.sleep(0)
    answered.set()
    assert await calm == "polled on"
