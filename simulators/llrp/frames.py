"""LLRP 1.0.1 message frames: a 10-byte header (3 reserved bits, 3-bit version, 10-bit type,
32-bit length including the header, 32-bit message id) and a body of fields and parameters."""

import struct
from dataclasses import dataclass
from enum import IntEnum

VERSION = 1
HEADER = struct.Struct("!HII")
HEADER_BYTES = HEADER.size
ID_MAX = 0xFFFFFFFF


class FrameError(ValueError):
    """Bytes that are not a well-formed LLRP frame or parameter."""


class MessageType(IntEnum):
    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    GET_ROSPECS = 26
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    GET_ROSPECS_RESPONSE = 36
    ADD_ACCESSSPEC = 40
    DELETE_ACCESSSPEC = 41
    ENABLE_ACCESSSPEC = 42
    DISABLE_ACCESSSPEC = 43
    GET_ACCESSSPECS = 44
    ADD_ACCESSSPEC_RESPONSE = 50
    DELETE_ACCESSSPEC_RESPONSE = 51
    ENABLE_ACCESSSPEC_RESPONSE = 52
    DISABLE_ACCESSSPEC_RESPONSE = 53
    GET_ACCESSSPECS_RESPONSE = 54
    GET_REPORT = 60
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100
    CUSTOM_MESSAGE = 1023


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    id: int
    body: bytes = b""
    version: int = VERSION


def encode(msg_type: int, msg_id: int, body: bytes = b"", version: int = VERSION) -> bytes:
    assert 0 <= msg_type < 1024, msg_type
    assert 0 <= msg_id <= ID_MAX, msg_id
    return HEADER.pack((version & 0x7) << 10 | msg_type, HEADER_BYTES + len(body), msg_id) + body


def header(data: bytes) -> tuple[int, int, int, int]:
    """(version, type, length, id) of the header at the start of `data`."""
    if len(data) < HEADER_BYTES:
        raise FrameError(f"{len(data)} bytes: shorter than a {HEADER_BYTES}-byte header")
    word, length, msg_id = HEADER.unpack_from(data)
    if length < HEADER_BYTES:
        raise FrameError(f"message length {length} < {HEADER_BYTES}")
    return (word >> 10) & 0x7, word & 0x3FF, length, msg_id


def decode(frame: bytes) -> Message:
    version, msg_type, length, msg_id = header(frame)
    if length != len(frame):
        raise FrameError(f"message length field {length} != {len(frame)} bytes")
    return Message(msg_type, msg_id, frame[HEADER_BYTES:], version)


def split(stream: bytes) -> list[Message]:
    """Every whole frame of a byte stream (e.g. a capture file); a trailing partial one fails."""
    messages = []
    pos = 0
    while pos < len(stream):
        length = header(stream[pos:])[2]
        if pos + length > len(stream):
            raise FrameError(f"frame at {pos} needs {length} bytes, {len(stream) - pos} left")
        messages.append(decode(stream[pos : pos + length]))
        pos += length
    return messages
