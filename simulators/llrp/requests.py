"""What a reader answers to each client request, and the state those requests change.

No I/O here: `answer` takes a decoded message and returns the frames to send back; the
ROSpecs it enables become `Inventory`s that the reader feeds with sightings.
"""

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.llrp import capabilities, config, frames, rospec, status
from simulators.llrp.config import ReaderConfig
from simulators.llrp.frames import FrameError, Message
from simulators.llrp.frames import MessageType as M
from simulators.llrp.inventory import REPORT_TAGS_MAX, Inventory, Report
from simulators.llrp.models import ReaderModel
from simulators.llrp.params import VENDOR_IMPINJ, P, first, iter_params, unpack
from simulators.llrp.rospec import ROSpec, State
from simulators.llrp.status import OK, Code, Status, StatusError, field_error
from simulators.llrp.tags import report_body
from simulators.sightings import Sighting

IMPINJ_ENABLE_EXTENSIONS = 21
IMPINJ_ENABLE_EXTENSIONS_RESPONSE = 22
CUSTOM_HEADER = struct.Struct("!IB")
EVENT_ROSPEC = 2
Clock = Callable[[], float]


@dataclass(slots=True)
class Answer:
    frames: list[bytes] = field(default_factory=list)
    payload: bytes = b""  # what follows LLRPStatus in the response
    close: bool = False  # close the connection once the frames are sent
    reports: list[Report] = field(default_factory=list)  # RO_ACCESS_REPORTs now due


@dataclass(slots=True)
class ReaderState:
    """What a reboot forgets."""

    config: ReaderConfig
    rospecs: dict[int, ROSpec] = field(default_factory=dict)
    inventories: dict[int, Inventory] = field(default_factory=dict)
    ended: list[tuple[bool, int]] = field(default_factory=list)  # events of removed ROSpecs
    keepalive_acks: int = 0


class Requests:
    def __init__(
        self, model: ReaderModel, now_s: Clock, report_tags_max: int = REPORT_TAGS_MAX
    ) -> None:
        self.model = model
        self.now_s = now_s
        self.report_tags_max = report_tags_max
        self.state = ReaderState(config.factory(model))
        self._by_type = self._handlers()

    def reset(self) -> None:
        """Power cycle: ROSpecs and configuration are gone."""
        self.state = ReaderState(config.factory(self.model))

    def answer(self, msg: Message) -> Answer:
        if msg.version != frames.VERSION:
            text = f"version {msg.version} unsupported; this reader speaks LLRP 1.0.1 (1)"
            return _error(msg, Status(Code.M_UnsupportedVersion, text))
        handler = self._by_type.get(msg.type)
        if handler is None:
            return _error(msg, Status(Code.M_UnsupportedMessage, f"message type {msg.type}"))
        out = Answer()
        try:
            st = handler(msg, out)
        except StatusError as e:
            st = e.status
        except FrameError as e:
            st = Status(Code.M_ParameterError, f"{M(msg.type).name}: {e}")
        if st is not None:
            out.frames.insert(0, self._response(msg, st, out))
        self._sync()
        return out

    def _response(self, msg: Message, st: Status, out: Answer) -> bytes:
        body = status.encode(st) + (out.payload if st.ok else b"")
        if msg.type == M.CUSTOM_MESSAGE:
            head = CUSTOM_HEADER.pack(VENDOR_IMPINJ, IMPINJ_ENABLE_EXTENSIONS_RESPONSE)
            return frames.encode(M.CUSTOM_MESSAGE, msg.id, head + body)
        reply = M.CLOSE_CONNECTION_RESPONSE if msg.type == M.CLOSE_CONNECTION else msg.type + 10
        return frames.encode(reply, msg.id, body)

    def _handlers(self) -> dict[int, Callable[[Message, Answer], Status | None]]:
        return {
            M.GET_READER_CAPABILITIES: self._capabilities,
            M.GET_READER_CONFIG: self._get_config,
            M.SET_READER_CONFIG: self._set_config,
            M.CLOSE_CONNECTION: self._close,
            M.ADD_ROSPEC: self._add_rospec,
            M.DELETE_ROSPEC: self._delete_rospec,
            M.START_ROSPEC: self._start_rospec,
            M.STOP_ROSPEC: self._stop_rospec,
            M.ENABLE_ROSPEC: self._enable_rospec,
            M.DISABLE_ROSPEC: self._disable_rospec,
            M.GET_ROSPECS: self._get_rospecs,
            M.DELETE_ACCESSSPEC: self._accessspec,
            M.ENABLE_ACCESSSPEC: self._accessspec,
            M.DISABLE_ACCESSSPEC: self._accessspec,
            M.GET_ACCESSSPECS: lambda msg, out: OK,
            M.GET_REPORT: self._get_report,
            M.KEEPALIVE_ACK: self._keepalive_ack,
            M.ENABLE_EVENTS_AND_REPORTS: lambda msg, out: None,
            M.CUSTOM_MESSAGE: self._custom,
        }

    def _capabilities(self, msg: Message, out: Answer) -> Status:
        (requested,) = unpack("!B", msg.body, "GET_READER_CAPABILITIES")
        if requested > max(capabilities.Requested):
            raise field_error(Code.A_OutOfRange, 0, f"RequestedData {requested}")
        out.payload = capabilities.encode(self.model, requested)
        return OK

    def _get_config(self, msg: Message, out: Answer) -> Status:
        antenna, requested, _, _ = unpack("!HBHH", msg.body, "GET_READER_CONFIG")
        if requested > max(config.Requested):
            raise field_error(Code.A_OutOfRange, 1, f"RequestedData {requested}")
        if antenna > self.model.antennas_max:
            raise field_error(Code.A_OutOfRange, 0, f"AntennaID {antenna}")
        out.payload = config.encode(self.state.config, self.model, requested, antenna)
        return OK

    def _set_config(self, msg: Message, out: Answer) -> Status:
        self.state.config = config.apply(self.state.config, msg.body, self.model)
        return OK

    def _close(self, msg: Message, out: Answer) -> Status:
        out.close = True
        return OK

    def _add_rospec(self, msg: Message, out: Answer) -> Status:
        param = first(list(iter_params(msg.body)), P.ROSpec)
        if param is None:
            raise StatusError(Status(Code.M_MissingParameter, "ADD_ROSPEC without ROSpec"))
        powers = frozenset(i for i, _ in self.model.power_table)
        spec = rospec.decode(param.body, self.model.antennas_max, self.model.priority_max, powers)
        if spec.id in self.state.rospecs:
            raise field_error(Code.A_Invalid, 0, f"//ROSpecID : {spec.id} already exists")
        if len(self.state.rospecs) >= self.model.rospecs_max:
            text = f"reader holds at most {self.model.rospecs_max} ROSpecs"
            raise StatusError(Status(Code.M_OverflowParameter, text))
        self.state.rospecs[spec.id] = spec
        return OK

    def _ids(self, msg: Message) -> list[int]:
        (rospec_id,) = unpack("!I", msg.body, M(msg.type).name)
        if rospec_id == 0:
            return list(self.state.rospecs)
        if rospec_id not in self.state.rospecs:
            raise rospec.rospec_id_error(rospec_id)
        return [rospec_id]

    def _delete_rospec(self, msg: Message, out: Answer) -> Status:
        for rid in self._ids(msg):
            out.reports += self._disable(rid)
            del self.state.rospecs[rid]
        return OK

    def _enable_rospec(self, msg: Message, out: Answer) -> Status:
        now_s = self.now_s()
        for rid in self._ids(msg):
            spec = self.state.rospecs[rid]
            if spec.state == State.Disabled:
                self.state.rospecs[rid] = spec.with_state(State.Inactive)
                inv = Inventory(
                    spec, self.state.config.report, self.model.impinj, now_s, self.report_tags_max
                )
                self.state.inventories[rid] = inv
                out.reports += inv.tick(now_s)
        return OK

    def _disable_rospec(self, msg: Message, out: Answer) -> Status:
        for rid in self._ids(msg):
            out.reports += self._disable(rid)
        return OK

    def _disable(self, rid: int) -> list[Report]:
        inv = self.state.inventories.pop(rid, None)
        self.state.rospecs[rid] = self.state.rospecs[rid].with_state(State.Disabled)
        if inv is None:
            return []
        reports = inv.stop(self.now_s())
        self.state.ended += inv.events
        return reports

    def _start_rospec(self, msg: Message, out: Answer) -> Status:
        (rid,) = self._ids_strict(msg)
        inv = self.state.inventories.get(rid)
        if inv is None:
            raise field_error(Code.A_Invalid, 1, f"//ROSpecID : {rid} is not enabled")
        inv.start(self.now_s())
        return OK

    def _stop_rospec(self, msg: Message, out: Answer) -> Status:
        (rid,) = self._ids_strict(msg)
        inv = self.state.inventories.get(rid)
        if inv is not None:
            out.reports += inv.stop(self.now_s())
        return OK

    def _ids_strict(self, msg: Message) -> list[int]:
        (rospec_id,) = unpack("!I", msg.body, M(msg.type).name)
        if rospec_id not in self.state.rospecs:
            raise rospec.rospec_id_error(rospec_id)
        return [rospec_id]

    def _get_rospecs(self, msg: Message, out: Answer) -> Status:
        out.payload = b"".join(_rospec_param(s) for s in self.state.rospecs.values())
        return OK

    def _accessspec(self, msg: Message, out: Answer) -> Status:
        (spec_id,) = unpack("!I", msg.body, M(msg.type).name)
        if spec_id != 0 or msg.type != M.DELETE_ACCESSSPEC:
            raise field_error(Code.A_Invalid, 1, "//AccessSpecID : invalid")
        return OK  # this reader holds no AccessSpecs (ADD_ACCESSSPEC is unsupported)

    def _get_report(self, msg: Message, out: Answer) -> None:
        for inv in self.state.inventories.values():
            out.reports += inv.flush()

    def _keepalive_ack(self, msg: Message, out: Answer) -> None:
        self.state.keepalive_acks += 1

    def _custom(self, msg: Message, out: Answer) -> Status | None:
        try:
            vendor, subtype = unpack("!IB", msg.body, "CUSTOM_MESSAGE")
        except FrameError as e:
            out.frames.append(_error_frame(msg, Status(Code.M_ParameterError, str(e))))
            return None
        if self.model.impinj and (vendor, subtype) == (VENDOR_IMPINJ, IMPINJ_ENABLE_EXTENSIONS):
            return OK
        text = f"custom message vendor {vendor} subtype {subtype} unsupported"
        out.frames.append(_error_frame(msg, Status(Code.M_UnsupportedMessage, text)))
        return None

    def due(self) -> list[Report]:
        """Reports that the ROSpecs' timers make due now."""
        now_s = self.now_s()
        reports: list[Report] = []
        for inv in self.state.inventories.values():
            reports += inv.tick(now_s)
        self._sync()
        return reports

    def sight(self, s: Sighting, utc_us: int) -> tuple[bool, list[Report]]:
        """Whether an active ROSpec reads `s` (by priority), and the reports now due."""
        reports = self.due()
        if not 1 <= s.antenna <= self.model.antennas_max:
            return False, reports  # no such port on this reader
        now_s = self.now_s()
        for inv in sorted(self.state.inventories.values(), key=lambda i: i.spec.priority):
            if inv.reads(s.antenna):
                reports += inv.sight(s, utc_us, now_s)
                return True, reports
        return False, reports

    @property
    def inventorying(self) -> bool:
        return any(inv.active for inv in self.state.inventories.values())

    def events(self) -> list[tuple[bool, int]]:
        """ROSpec (started?, id) events since the last call, if the client asked for them."""
        wanted = self.state.config.events.get(EVENT_ROSPEC, False)
        out, self.state.ended = self.state.ended, []
        for inv in self.state.inventories.values():
            out += inv.events
            inv.events.clear()
        return out if wanted else []

    def _sync(self) -> None:
        for rid, inv in self.state.inventories.items():
            want = State.Active if inv.active else State.Inactive
            if self.state.rospecs[rid].state != want:
                self.state.rospecs[rid] = self.state.rospecs[rid].with_state(want)

    def next_deadline_s(self) -> float | None:
        times = [inv.next_deadline_s() for inv in self.state.inventories.values()]
        return min((t for t in times if t is not None), default=None)


def _rospec_param(spec: ROSpec) -> bytes:
    body = spec.raw[:5] + bytes([spec.state]) + spec.raw[6:]
    return struct.pack("!HH", P.ROSpec, 4 + len(body)) + body


def _error_frame(msg: Message, st: Status) -> bytes:
    return frames.encode(M.ERROR_MESSAGE, msg.id, status.encode(st))


def _error(msg: Message, st: Status) -> Answer:
    return Answer([_error_frame(msg, st)])


def report_frame(msg_id: int, report: Report) -> bytes:
    return frames.encode(M.RO_ACCESS_REPORT, msg_id, report_body(report))
