"""The reader's answers, with sllurp 3.0.5 as the other side: its encoder writes the requests
and its decoder must read every answer (and see the right LLRPStatus codes)."""

import random
from typing import Any

import pytest
from sllurp.llrp import LLRPClient, LLRPMessage
from sllurp.llrp_proto import LLRPROSpec

from simulators.llrp import frames
from simulators.llrp.frames import MessageType as M
from simulators.llrp.models import load
from simulators.llrp.params import P, iter_params
from simulators.llrp.requests import Requests
from simulators.llrp.rospec import State

MODELS = ["impinj-r420", "zebra-fx9600"]


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def reader(model: str = "impinj-r420") -> Requests:
    return Requests(load(model), Clock())


def raw(requests: Requests, frame: bytes) -> list[bytes]:
    return requests.answer(frames.decode(frame)).frames


def ask(requests: Requests, msg: dict[str, Any], msg_id: int = 7) -> dict[str, Any]:
    """Send `msg` (sllurp's dict form); the one answer as sllurp decodes it, with its name."""
    name = next(iter(msg))
    msg[name]["ID"] = msg_id
    [answer] = raw(requests, LLRPMessage(msgdict=msg).msgbytes)
    decoded = LLRPMessage(msgbytes=answer)
    body = dict(decoded.msgdict[decoded.getName()])
    assert body["ID"] == msg_id
    return {"name": decoded.getName(), **body}


def state(requests: Requests, rospec_id: int = 1) -> State:
    return requests.state.rospecs[rospec_id].state


def code(answer: dict[str, Any]) -> str:
    return str(answer["LLRPStatus"]["StatusCode"])


def add(
    requests: Requests, rospec_id: int = 1, antennas: tuple[int, ...] = (1, 2), power: int = 1
) -> dict[str, Any]:
    spec = LLRPROSpec(None, rospec_id, antennas=antennas, tx_power=power, report_every_n_tags=5)
    return ask(requests, {"ADD_ROSPEC": {"ROSpecID": rospec_id, "ROSpec": spec}})


@pytest.mark.parametrize("model", MODELS)
def test_sllurp_reads_the_capabilities_it_needs(model: str) -> None:
    answer = ask(reader(model), {"GET_READER_CAPABILITIES": {"RequestedData": 0}})
    assert (answer["name"], code(answer)) == ("GET_READER_CAPABILITIES_RESPONSE", "Success")
    general = answer["GeneralDeviceCapabilities"]
    assert general["MaxNumberOfAntennaSupported"] == 4
    assert general["DeviceManufacturerName"] == load(model).vendor
    band = answer["RegulatoryCapabilities"]["UHFBandCapabilities"]
    table = LLRPClient.parsePowerTable(band)
    assert max(table) == max(dbm for _, dbm in load(model).power_table) / 100
    modes = band["UHFC1G2RFModeTable"]["UHFC1G2RFModeTableEntry"]
    assert len(modes) == len(
        load(model).capabilities["RegulatoryCapabilities"]["UHFBandCapabilities"]["C1G2RFModes"][
            "UHFC1G2RFModeTableEntries"
        ]
    )
    assert "C1G2LLRPCapabilities" in answer
    assert "LLRPCapabilities" in answer


@pytest.mark.parametrize("model", MODELS)
def test_sllurp_reads_the_config_and_sets_keepalive(model: str) -> None:
    r = reader(model)
    answer = ask(r, {"GET_READER_CONFIG": {"RequestedData": 0}})
    assert code(answer) == "Success"
    assert len(answer["AntennaConfiguration"]) == 4
    assert "ROReportSpec" in answer
    spec = {"KeepaliveTriggerType": 1, "TimeInterval": 250}
    notify = {"EventNotificationState": {"ROSpecEvent": True}}
    set_answer = ask(
        r,
        {
            "SET_READER_CONFIG": {
                "ResetToFactoryDefaults": False,
                "KeepaliveSpec": spec,
                "ReaderEventNotificationSpec": notify,
            }
        },
    )
    assert code(set_answer) == "Success"
    assert r.state.config.keepalive_ms == 250
    assert r.state.config.events[2] is True
    again = ask(r, {"GET_READER_CONFIG": {"RequestedData": 0}})
    assert again["KeepaliveSpec"]["TimeInterval"] == 250
    reset = {"SET_READER_CONFIG": {"ResetToFactoryDefaults": True}}
    assert code(ask(r, reset)) == "Success"
    assert r.state.config.keepalive_ms != 250


def test_transmit_power_outside_the_table_is_out_of_range() -> None:
    r = reader()
    transmitter = {"HopTableId": 1, "ChannelIndex": 0, "TransmitPower": 500}
    antenna = {"AntennaID": 1, "RFTransmitter": transmitter}
    msg = {
        "SET_READER_CONFIG": {"ResetToFactoryDefaults": False, "AntennaConfiguration": [antenna]}
    }
    answer = ask(r, msg)
    assert code(answer) == "ParameterError"
    assert answer["LLRPStatus"]["ParameterError"]["FieldError"]["ErrorCode"] == "A_OutOfRange"
    transmitter["TransmitPower"] = 81
    assert code(ask(r, msg)) == "Success"
    assert r.state.config.antennas[0].transmit_power == 81


def test_rospec_lifecycle_and_get_rospecs() -> None:
    r = reader()
    assert code(add(r)) == "Success"
    assert state(r) == State.Disabled
    assert code(ask(r, {"ENABLE_ROSPEC": {"ROSpecID": 1}})) == "Success"
    assert state(r) == State.Active  # Immediate start trigger
    [frame] = raw(r, frames.encode(M.GET_ROSPECS, 3))
    msg = frames.decode(frame)
    assert msg.type == M.GET_ROSPECS_RESPONSE
    [_, spec] = list(iter_params(msg.body))
    assert spec.type == P.ROSpec
    assert spec.body[:6] == bytes([0, 0, 0, 1, 0, State.Active])
    assert code(ask(r, {"STOP_ROSPEC": {"ROSpecID": 1}})) == "Success"
    assert state(r) == State.Inactive
    assert code(ask(r, {"START_ROSPEC": {"ROSpecID": 1}})) == "Success"
    assert r.inventorying
    assert code(ask(r, {"DISABLE_ROSPEC": {"ROSpecID": 1}})) == "Success"
    assert not r.inventorying
    assert code(ask(r, {"DELETE_ROSPEC": {"ROSpecID": 0}})) == "Success"
    assert r.state.rospecs == {}


@pytest.mark.parametrize(
    "request_name",
    ["ENABLE_ROSPEC", "START_ROSPEC", "STOP_ROSPEC", "DISABLE_ROSPEC", "DELETE_ROSPEC"],
)
def test_unknown_rospec_id_is_a_field_error(request_name: str) -> None:
    answer = ask(reader(), {request_name: {"ROSpecID": 42}})
    assert code(answer) == "FieldError"
    assert answer["LLRPStatus"]["FieldError"]["ErrorCode"] == "A_Invalid"


def test_start_before_enable_duplicates_and_too_many_rospecs_are_refused() -> None:
    r = reader()
    add(r)
    assert code(ask(r, {"START_ROSPEC": {"ROSpecID": 1}})) == "FieldError"
    assert code(add(r)) == "FieldError"  # the same id again
    assert code(add(r, rospec_id=2)) == "OverflowParameter"  # an R420 holds one ROSpec
    zebra = reader("zebra-fx9600")
    assert code(add(zebra)) == code(add(zebra, rospec_id=2)) == "Success"


def test_antenna_beyond_the_reader_is_out_of_range() -> None:
    answer = add(reader(), antennas=(1, 5))
    assert code(answer) == "ParameterError"
    error = answer["LLRPStatus"]["ParameterError"]
    assert error["ParameterType"] == "AISpec"
    assert error["FieldError"]["ErrorCode"] == "A_OutOfRange"


def test_rospec_transmit_power_outside_the_table_is_out_of_range() -> None:
    answer = add(reader(), power=82)  # the R420's table: indices 1..81
    assert code(answer) == "ParameterError"
    assert answer["LLRPStatus"]["ParameterError"]["ParameterType"] == "RFTransmitter"
    assert answer["LLRPStatus"]["ParameterError"]["FieldError"]["ErrorCode"] == "A_OutOfRange"
    assert code(add(reader("zebra-fx9600"), power=0)) == "Success"  # its table starts at 0


def test_wrong_version_unknown_type_and_short_body_get_their_codes() -> None:
    r = reader()
    [v2] = raw(r, frames.encode(M.GET_READER_CAPABILITIES, 5, b"\x00", version=2))
    answer = LLRPMessage(msgbytes=v2).msgdict["ERROR_MESSAGE"]
    assert (answer["ID"], answer["LLRPStatus"]["StatusCode"]) == (5, "UnsupportedVersion")
    [unknown] = raw(r, frames.encode(99, 6))
    assert (
        LLRPMessage(msgbytes=unknown).msgdict["ERROR_MESSAGE"]["LLRPStatus"]["StatusCode"]
        == "UnsupportedMessage"
    )
    [short] = raw(r, frames.encode(M.GET_READER_CAPABILITIES, 8))
    decoded = LLRPMessage(msgbytes=short).msgdict["GET_READER_CAPABILITIES_RESPONSE"]
    assert decoded["LLRPStatus"]["StatusCode"] == "ParameterError"
    [access] = raw(r, frames.encode(M.ADD_ACCESSSPEC, 9))
    assert LLRPMessage(msgbytes=access).getName() == "ERROR_MESSAGE"


def test_accessspec_zero_deletes_nothing_and_an_unknown_one_is_invalid() -> None:
    r = reader()
    assert code(ask(r, {"DELETE_ACCESSSPEC": {"AccessSpecID": 0}})) == "Success"
    answer = ask(r, {"DELETE_ACCESSSPEC": {"AccessSpecID": 431}})
    assert answer["LLRPStatus"]["FieldError"]["ErrorCode"] == "A_Invalid"


def test_impinj_extensions_only_on_impinj_readers() -> None:
    answer = ask(reader("impinj-r420"), {"IMPINJ_ENABLE_EXTENSIONS": {}})
    assert (answer["name"], code(answer)) == ("IMPINJ_ENABLE_EXTENSIONS_RESPONSE", "Success")
    refused = ask(reader("zebra-fx9600"), {"IMPINJ_ENABLE_EXTENSIONS": {}})
    assert (refused["name"], code(refused)) == ("ERROR_MESSAGE", "UnsupportedMessage")


def test_close_connection_is_answered_and_closes() -> None:
    r = reader()
    msg = LLRPMessage(msgdict={"CLOSE_CONNECTION": {"ID": 4}}).msgbytes
    answer = r.answer(frames.decode(msg))
    assert answer.close
    decoded = LLRPMessage(msgbytes=answer.frames[0]).msgdict["CLOSE_CONNECTION_RESPONSE"]
    assert decoded["LLRPStatus"]["StatusCode"] == "Success"


def test_rospec_events_only_when_the_client_asked_for_them() -> None:
    r = reader()
    add(r)
    ask(r, {"ENABLE_ROSPEC": {"ROSpecID": 1}})
    assert r.events() == []
    notify = {"EventNotificationState": {"ROSpecEvent": True}}
    ask(
        r,
        {
            "SET_READER_CONFIG": {
                "ResetToFactoryDefaults": False,
                "ReaderEventNotificationSpec": notify,
            }
        },
    )
    ask(r, {"DISABLE_ROSPEC": {"ROSpecID": 1}})
    assert r.events() == [(False, 1)]


def test_mutated_requests_never_crash_the_reader() -> None:
    """Corrupted bodies of real requests get answers (errors), never an exception."""
    rng = random.Random(6)
    spec = LLRPROSpec(None, 1, antennas=(1, 2), report_every_n_tags=3)
    bases = [
        LLRPMessage(msgdict={"ADD_ROSPEC": {"ID": 1, "ROSpecID": 1, "ROSpec": spec}}).msgbytes,
        LLRPMessage(
            msgdict={
                "SET_READER_CONFIG": {
                    "ID": 1,
                    "ResetToFactoryDefaults": False,
                    "KeepaliveSpec": {"KeepaliveTriggerType": 1, "TimeInterval": 5},
                }
            }
        ).msgbytes,
    ]
    types = [1, 2, 3, 20, 21, 22, 23, 24, 25, 26, 41, 60, 64, 72, 1023]
    for _ in range(2000):
        r = reader(rng.choice(MODELS))
        body = bytearray(rng.choice(bases)[frames.HEADER_BYTES :])
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        if rng.random() < 0.3:
            body = body[: rng.randrange(len(body))]
        for msg_type in (rng.choice(types), M.ENABLE_ROSPEC):
            answer = r.answer(frames.Message(msg_type, 1, bytes(body)))
            assert all(frames.decode(f).id == 1 for f in answer.frames)
        r.due()
