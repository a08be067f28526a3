"""READER_EVENT_NOTIFICATION bodies (LLRP 1.0.1 §16.2.7.6)."""

import struct
from dataclasses import dataclass
from enum import IntEnum

from simulators.llrp.frames import FrameError
from simulators.llrp.params import P, first, iter_params, tlv, unpack


class ConnectionAttempt(IntEnum):
    Success = 0
    Failed_Reader_Initiated_Connection_Exists = 1
    Failed_Client_Initiated_Connection_Exists = 2
    Failed_Other = 3
    Another_Connection_Attempted = 4


class ROSpecEventType(IntEnum):
    Start = 0
    End = 1
    Preemption = 2


def _data(utc_us: int, *events: bytes) -> bytes:
    stamp = tlv(P.UTCTimestamp, struct.pack("!Q", utc_us))
    return tlv(P.ReaderEventNotificationData, stamp, *events)


def connection_attempt(utc_us: int, status: ConnectionAttempt) -> bytes:
    return _data(utc_us, tlv(P.ConnectionAttemptEvent, struct.pack("!H", status)))


def connection_close(utc_us: int) -> bytes:
    return _data(utc_us, tlv(P.ConnectionCloseEvent))


def rospec_event(utc_us: int, kind: ROSpecEventType, rospec_id: int) -> bytes:
    body = struct.pack("!BII", kind, rospec_id, 0)
    return _data(utc_us, tlv(P.ROSpecEvent, body))


@dataclass(frozen=True, slots=True)
class Notification:
    """What checks need of a READER_EVENT_NOTIFICATION: its time and which events it holds."""

    utc_us: int | None
    uptime_us: int | None
    events: dict[str, bytes]  # event parameter name -> its body


def decode(body: bytes) -> Notification:
    data = first(list(iter_params(body)), P.ReaderEventNotificationData)
    if data is None:
        raise FrameError("READER_EVENT_NOTIFICATION without ReaderEventNotificationData")
    utc = uptime = None
    events: dict[str, bytes] = {}
    for p in iter_params(data.body):
        if p.type == P.UTCTimestamp:
            utc = unpack("!Q", p.body, "UTCTimestamp")[0]
        elif p.type == P.Uptime:
            uptime = unpack("!Q", p.body, "Uptime")[0]
        elif not p.tv and p.type in P._value2member_map_:
            events[P(p.type).name] = p.body
        else:
            events[f"custom:{p.vendor}:{p.subtype}" if p.vendor else str(p.type)] = p.body
    return Notification(utc, uptime, events)
