import aiomqtt

from aggregator.acks import InOrderAcks


def _message(mid: int) -> aiomqtt.Message:
    return aiomqtt.Message("t", b"", qos=1, retain=False, mid=mid, properties=None)


def test_pubacks_leave_in_arrival_order_once_each_message_is_handled() -> None:
    sent: list[int] = []
    acks = InOrderAcks(lambda m: sent.append(m.mid))
    first, second, third = (acks.track(_message(mid)) for mid in (1, 2, 3))
    third.done()
    second.done()
    assert sent == []  # the first one still holds them back
    first.done()
    assert sent == [1, 2, 3]
    assert len(acks) == 0
