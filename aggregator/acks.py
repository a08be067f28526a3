"""Broker acknowledgements in arrival order, each sent once its message is handled.

A message is handled when it is posted (committed), dead-lettered, refused or its status is
recorded. PUBACKs leave in the order the PUBLISHes arrived (MQTT 3.1.1 §4.6), so one slow
posting holds back the acks behind it and the broker's window stays full: that is the
back-pressure. On a lost connection the tracker is dropped with it; the broker re-sends
everything unacknowledged and idempotent posting answers "duplicate".
"""

from collections import deque
from collections.abc import Callable

import aiomqtt


class Ticket:
    __slots__ = ("_acks", "handled", "message")

    def __init__(self, acks: "InOrderAcks", message: aiomqtt.Message) -> None:
        self._acks = acks
        self.message = message
        self.handled = False

    def done(self) -> None:
        """This message is handled: its PUBACK goes once every earlier one's has."""
        self.handled = True
        self._acks.release()


class InOrderAcks:
    def __init__(self, send: Callable[[aiomqtt.Message], None]) -> None:
        self._send = send
        self._waiting: deque[Ticket] = deque()

    def track(self, message: aiomqtt.Message) -> Ticket:
        ticket = Ticket(self, message)
        self._waiting.append(ticket)
        return ticket

    def release(self) -> None:
        while self._waiting and self._waiting[0].handled:
            self._send(self._waiting.popleft().message)

    def __len__(self) -> int:
        return len(self._waiting)
