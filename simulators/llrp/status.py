"""LLRPStatus (StatusCode, ErrorDescription, FieldError, ParameterError) and its codes (LLRP
1.0.1 §14.1)."""

import struct
from dataclasses import dataclass
from enum import IntEnum

from simulators.llrp.frames import FrameError
from simulators.llrp.params import P, first, iter_params, tlv, unpack, utf8v


class Code(IntEnum):
    M_Success = 0
    M_ParameterError = 100
    M_FieldError = 101
    M_UnexpectedParameter = 102
    M_MissingParameter = 103
    M_DuplicateParameter = 104
    M_OverflowParameter = 105
    M_OverflowField = 106
    M_UnknownParameter = 107
    M_UnknownField = 108
    M_UnsupportedMessage = 109
    M_UnsupportedVersion = 110
    M_UnsupportedParameter = 111
    P_ParameterError = 200
    P_FieldError = 201
    P_UnexpectedParameter = 202
    P_MissingParameter = 203
    P_DuplicateParameter = 204
    P_OverflowParameter = 205
    P_OverflowField = 206
    P_UnknownParameter = 207
    P_UnknownField = 208
    P_UnsupportedParameter = 209
    A_Invalid = 300
    A_OutOfRange = 301
    R_DeviceError = 401


@dataclass(frozen=True, slots=True)
class FieldError:
    field: int
    code: int


@dataclass(frozen=True, slots=True)
class ParameterError:
    param_type: int
    code: int
    field_error: FieldError | None = None
    parameter_error: "ParameterError | None" = None


@dataclass(frozen=True, slots=True)
class Status:
    code: int = Code.M_Success
    description: str = ""
    field_error: FieldError | None = None
    parameter_error: ParameterError | None = None

    @property
    def ok(self) -> bool:
        return self.code == Code.M_Success


OK = Status()


class StatusError(Exception):
    """A request the reader refuses: carries the LLRPStatus to answer with."""

    def __init__(self, status: Status) -> None:
        super().__init__(f"{Code(status.code).name}: {status.description}")
        self.status = status


def field_error(code: Code, field: int, description: str) -> StatusError:
    return StatusError(Status(Code.M_FieldError, description, FieldError(field, code)))


def parameter_error(
    param_type: int, code: Code, description: str, field: tuple[int, Code] | None = None
) -> StatusError:
    fe = FieldError(*field) if field else None
    return StatusError(
        Status(Code.M_ParameterError, description, None, ParameterError(param_type, code, fe))
    )


def encode(status: Status) -> bytes:
    parts = [struct.pack("!H", status.code), utf8v(status.description)]
    if status.field_error:
        parts.append(_field_error(status.field_error))
    if status.parameter_error:
        parts.append(_parameter_error(status.parameter_error))
    return tlv(P.LLRPStatus, *parts)


def _field_error(fe: FieldError) -> bytes:
    return tlv(P.FieldError, struct.pack("!HH", fe.field, fe.code))


def _parameter_error(pe: ParameterError) -> bytes:
    parts = [struct.pack("!HH", pe.param_type, pe.code)]
    if pe.field_error:
        parts.append(_field_error(pe.field_error))
    if pe.parameter_error:
        parts.append(_parameter_error(pe.parameter_error))
    return tlv(P.ParameterError, *parts)


def decode(body: bytes) -> Status:
    """The body of an LLRPStatus parameter."""
    (code,) = unpack("!H", body, "LLRPStatus")
    (size,) = unpack("!H", body[2:], "LLRPStatus ErrorDescription")
    text = body[4 : 4 + size]
    if len(text) != size:
        raise FrameError("LLRPStatus: ErrorDescription is cut short")
    params = list(iter_params(body[4 + size :]))
    fe = first(params, P.FieldError)
    pe = first(params, P.ParameterError)
    return Status(
        code,
        text.decode(errors="replace"),
        FieldError(*unpack("!HH", fe.body, "FieldError")) if fe else None,
        _decode_parameter_error(pe.body) if pe else None,
    )


def _decode_parameter_error(body: bytes) -> ParameterError:
    ptype, code = unpack("!HH", body, "ParameterError")
    params = list(iter_params(body[4:]))
    fe = first(params, P.FieldError)
    pe = first(params, P.ParameterError)
    return ParameterError(
        ptype,
        code,
        FieldError(*unpack("!HH", fe.body, "FieldError")) if fe else None,
        _decode_parameter_error(pe.body) if pe else None,
    )
