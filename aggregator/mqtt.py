"""The aggregator's one adapter to aiomqtt / paho: the client, manual acks, flow control.

Back-pressure instead of discarding (DESIGN §9), in two layers:
- QoS 1 messages are acknowledged to the broker (PUBACK) only once ingest has handled them, by
  `ack`. The broker keeps every unacknowledged one in our persistent session and, if it honours
  the in-flight window (MQTT 5 Receive Maximum = incoming_messages_max), sends no more.
- Whatever the broker does (mosquitto 2.0.11 overshoots that window after the first acks; QoS 0
  has no window at all), once incoming_messages_max messages wait here we stop reading the
  socket, and read again when half of them are handled. TCP then holds the broker back.
"""

import asyncio
import logging
import socket
import time
from collections.abc import Callable

import aiomqtt
from paho.mqtt import client as paho
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from aggregator.settings import MqttSettings

log = logging.getLogger(__name__)

SESSION_NEVER_EXPIRES = 0xFFFFFFFF  # as a clean_session=False session in MQTT 3.1.1


def client(settings: MqttSettings, flow: "Flow") -> aiomqtt.Client:
    v5 = settings.protocol == "5"
    mqtt = aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=settings.client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        clean_session=None if v5 else False,
        clean_start=False if v5 else MQTT_CLEAN_START_FIRST_ONLY,  # paho: v5 only
        properties=_connect_properties(settings) if v5 else None,
        username=settings.username,
        password=settings.password_text(),
        keepalive=settings.keepalive_s,
        tls_context=settings.tls_context(),
        timeout=10,
        queue_type=flow.queue_type(),
        # paho leaves Nagle on: a burst of acks would then wait on the broker's delayed ACKs.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    flow.attach(mqtt._client)  # aiomqtt exposes neither paho's manual acks nor its socket
    mqtt._client.manual_ack_set(True)
    return mqtt


def ack(mqtt: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """PUBACK one handled QoS 1 message (nothing to do for QoS 0)."""
    if message.qos > 0:
        mqtt._client.ack(message.mid, message.qos)


def _connect_properties(settings: MqttSettings) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.ReceiveMaximum = settings.incoming_messages_max
    properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    return properties


class Flow:
    """Stops reading the socket while `high` received messages wait; reads again at half."""

    def __init__(self, high: int) -> None:
        self.high = high
        self.low = high // 2
        self.pauses = 0
        self._paho: paho.Client | None = None
        self._reader: tuple[Callable[..., object], tuple[object, ...]] | None = None
        self._fd = -1
        self._queue: asyncio.Queue[aiomqtt.Message] | None = None
        self._arrived: dict[int, float] = {}  # id(message) -> monotonic time, until taken

    def attach(self, client: paho.Client) -> None:
        """A new connection's client: nothing of the last one's pause carries over."""
        self._paho, self._reader, self._fd = client, None, -1
        self._arrived.clear()

    def waiting(self) -> int:
        """Messages received and not taken by ingest yet."""
        return 0 if self._queue is None else self._queue.qsize()

    def received_at(self, message: aiomqtt.Message) -> float:
        """When (time.monotonic) the client received `message`; now if unknown."""
        return self._arrived.pop(id(message), None) or time.monotonic()

    def queue_type(self) -> type[asyncio.Queue[aiomqtt.Message]]:
        flow = self

        class Incoming(asyncio.Queue[aiomqtt.Message]):
            def __init__(self, maxsize: int = 0) -> None:
                super().__init__()  # bounded by pausing the socket, never by discarding
                flow._queue = self

            def put_nowait(self, item: aiomqtt.Message) -> None:
                flow._arrived[id(item)] = time.monotonic()
                super().put_nowait(item)
                if self.qsize() >= flow.high:
                    flow.pause()

            def get_nowait(self) -> aiomqtt.Message:
                item = super().get_nowait()
                if self.qsize() <= flow.low:
                    flow.resume()
                return item

        return Incoming

    def pause(self) -> None:
        sock = self._paho.socket() if self._paho is not None else None
        if self._reader is not None or sock is None:
            return
        loop = asyncio.get_running_loop()
        # asyncio keeps aiomqtt's reader callback in its selector; put that same one back later.
        handle = loop._selector.get_key(sock.fileno()).data[0]  # type: ignore[attr-defined]
        self._reader = (handle._callback, handle._args or ())  # removing it cancels the handle
        self._fd = sock.fileno()
        loop.remove_reader(self._fd)
        self.pauses += 1
        log.info("%d messages wait to be handled: not reading from the broker", self.high)

    def resume(self) -> None:
        reader, self._reader = self._reader, None
        sock = self._paho.socket() if self._paho is not None else None
        if reader is None or sock is None or sock.fileno() != self._fd:
            return  # the connection is gone: its socket with it
        callback, args = reader
        asyncio.get_running_loop().add_reader(self._fd, callback, *args)
