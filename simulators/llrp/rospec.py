"""ROSpec as a client sends it in ADD_ROSPEC: what the reader needs to run it (its id, when it
starts and stops, the antennas of each AISpec and their stop triggers, the report spec)."""

from dataclasses import dataclass, replace
from enum import IntEnum

from simulators.llrp import reportspec
from simulators.llrp.frames import FrameError
from simulators.llrp.params import P, Param, first, iter_params, unpack
from simulators.llrp.reportspec import ReportSpec
from simulators.llrp.status import Code, StatusError, field_error, parameter_error


class State(IntEnum):
    Disabled = 0
    Inactive = 1
    Active = 2


class StartTrigger(IntEnum):
    Null = 0
    Immediate = 1
    Periodic = 2
    GPI = 3


class StopTrigger(IntEnum):
    Null = 0
    Duration = 1
    GPI = 2


class AIStopTrigger(IntEnum):
    Null = 0
    Duration = 1
    GPI = 2
    TagObservation = 3


class TagTriggerType(IntEnum):
    N_Tags = 0  # N tag observations, or timeout
    No_New_Tags = 1  # no new observation for T ms, or timeout
    N_Attempts = 2  # N attempts to see all tags, or timeout (treated as timeout only)
    N_Unique_Tags = 3
    N_Unique_Tags_Or_No_New = 4


@dataclass(frozen=True, slots=True)
class TagTrigger:
    type: int
    n_tags: int
    n_attempts: int
    t_ms: int
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class AISpec:
    antennas: tuple[int, ...]  # () = every antenna (AntennaID 0)
    stop_trigger: int = AIStopTrigger.Null
    duration_ms: int = 0
    tag_trigger: TagTrigger | None = None
    inventory_parameter_spec_id: int = 1


@dataclass(frozen=True, slots=True)
class ROSpec:
    id: int
    priority: int
    state: State
    ai_specs: tuple[AISpec, ...]
    start_trigger: int = StartTrigger.Null
    period_ms: int = 0
    offset_ms: int = 0
    stop_trigger: int = StopTrigger.Null
    duration_ms: int = 0
    report: ReportSpec | None = None
    raw: bytes = b""  # the ROSpec parameter body as added (GET_ROSPECS answers with it)

    def with_state(self, state: State) -> "ROSpec":
        return replace(self, state=state)


def decode(
    body: bytes, antennas_max: int, priority_max: int, power_indices: frozenset[int] = frozenset()
) -> ROSpec:
    """The body of an ROSpec parameter; StatusError for what a reader refuses (with
    `power_indices`, also a TransmitPower index that is not in the reader's table)."""
    try:
        return _decode(body, antennas_max, priority_max, power_indices)
    except FrameError as e:
        raise parameter_error(P.ROSpec, Code.P_ParameterError, f"ROSpec: {e}") from e


def _decode(
    body: bytes, antennas_max: int, priority_max: int, power_indices: frozenset[int]
) -> ROSpec:
    rospec_id, priority, state = unpack("!IBB", body, "ROSpec")
    if rospec_id == 0:
        raise parameter_error(P.ROSpec, Code.P_FieldError, "ROSpecID 0", (0, Code.A_Invalid))
    if priority > priority_max:
        raise parameter_error(
            P.ROSpec,
            Code.P_FieldError,
            f"Priority {priority} > {priority_max}",
            (1, Code.A_OutOfRange),
        )
    if state != State.Disabled:
        raise parameter_error(
            P.ROSpec, Code.P_FieldError, "CurrentState must be Disabled", (2, Code.A_Invalid)
        )
    params = list(iter_params(body[6:]))
    boundary = first(params, P.ROBoundarySpec)
    if boundary is None:
        raise _missing(P.ROBoundarySpec)
    ai_specs = tuple(_ai_spec(p, antennas_max, power_indices) for p in params if p.type == P.AISpec)
    if not ai_specs:
        raise _missing(P.AISpec)
    report = first(params, P.ROReportSpec)
    spec = ROSpec(
        rospec_id,
        priority,
        State.Disabled,
        ai_specs,
        report=reportspec.decode(report.body) if report else None,
        raw=body,
    )
    return _boundary(spec, boundary)


def _missing(ptype: int) -> StatusError:
    return parameter_error(P.ROSpec, Code.P_MissingParameter, f"ROSpec: no {P(ptype).name}")


def _boundary(spec: ROSpec, boundary: Param) -> ROSpec:
    params = list(iter_params(boundary.body))
    start = first(params, P.ROSpecStartTrigger)
    stop = first(params, P.ROSpecStopTrigger)
    if start is None or stop is None:
        raise _missing(P.ROSpecStartTrigger if start is None else P.ROSpecStopTrigger)
    (start_type,) = unpack("!B", start.body, "ROSpecStartTrigger")
    offset_ms = period_ms = 0
    if start_type == StartTrigger.Periodic:
        periodic = first(list(iter_params(start.body[1:])), P.PeriodicTriggerValue)
        if periodic is None:
            raise _missing(P.PeriodicTriggerValue)
        offset_ms, period_ms = unpack("!II", periodic.body, "PeriodicTriggerValue")
    stop_type, duration_ms = unpack("!BI", stop.body, "ROSpecStopTrigger")
    if start_type > StartTrigger.GPI or stop_type > StopTrigger.GPI:
        raise parameter_error(
            P.ROBoundarySpec, Code.P_FieldError, "unknown trigger type", (0, Code.A_OutOfRange)
        )
    return replace(
        spec,
        start_trigger=start_type,
        offset_ms=offset_ms,
        period_ms=period_ms,
        stop_trigger=stop_type,
        duration_ms=duration_ms,
    )


def _ai_spec(param: Param, antennas_max: int, power_indices: frozenset[int]) -> AISpec:
    (count,) = unpack("!H", param.body, "AISpec")
    ids = unpack(f"!{count}H", param.body[2:], "AISpec AntennaIDs")
    bad = [a for a in ids if a > antennas_max]
    if bad:
        raise parameter_error(
            P.AISpec,
            Code.P_FieldError,
            f"AntennaID {bad[0]} out of range 1..{antennas_max}",
            (0, Code.A_OutOfRange),
        )
    params = list(iter_params(param.body[2 + 2 * count :]))
    antennas = () if 0 in ids else tuple(ids)
    ips = first(params, P.InventoryParameterSpec)
    ips_id = unpack("!H", ips.body, "InventoryParameterSpec")[0] if ips else 1
    if ips is not None and power_indices:
        _check_power(ips.body[3:], antennas_max, power_indices)
    stop = first(params, P.AISpecStopTrigger)
    if stop is None:
        raise _missing(P.AISpecStopTrigger)
    stop_type, duration_ms = unpack("!BI", stop.body, "AISpecStopTrigger")
    tag_trigger = None
    if stop_type == AIStopTrigger.TagObservation:
        obs = first(list(iter_params(stop.body[5:])), P.TagObservationTrigger)
        if obs is None:
            raise _missing(P.TagObservationTrigger)
        kind, _, n, attempts, t_ms, timeout_ms = unpack("!BBHHHI", obs.body, "TagObservation")
        tag_trigger = TagTrigger(kind, n, attempts, t_ms, timeout_ms)
    elif stop_type > AIStopTrigger.TagObservation:
        raise parameter_error(
            P.AISpecStopTrigger, Code.P_FieldError, "unknown trigger", (0, Code.A_OutOfRange)
        )
    return AISpec(antennas, stop_type, duration_ms, tag_trigger, ips_id)


def _check_power(body: bytes, antennas_max: int, power_indices: frozenset[int]) -> None:
    """The AntennaConfigurations of an InventoryParameterSpec (after its id and protocol)."""
    for conf in iter_params(body):
        if conf.type != P.AntennaConfiguration:
            continue
        (antenna,) = unpack("!H", conf.body, "AntennaConfiguration")
        if antenna > antennas_max:
            raise parameter_error(
                P.AntennaConfiguration,
                Code.P_FieldError,
                f"AntennaID {antenna} out of range 1..{antennas_max}",
                (0, Code.A_OutOfRange),
            )
        rf = first(list(iter_params(conf.body[2:])), P.RFTransmitter)
        power = unpack("!HHH", rf.body, "RFTransmitter")[2] if rf else None
        if power is not None and power not in power_indices:
            raise parameter_error(
                P.RFTransmitter,
                Code.P_FieldError,
                f"TransmitPower index {power} not in the power table",
                (2, Code.A_OutOfRange),
            )


def rospec_id_error(rospec_id: int) -> StatusError:
    """What a reader answers for a ROSpecID it does not hold (like Impinj's for AccessSpecs)."""
    return field_error(Code.A_Invalid, 1, f"//ROSpecID : invalid ({rospec_id})")
