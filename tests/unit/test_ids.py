from stockwire.ids import uuid7, uuid7_ms


def test_uuid7_has_version_variant_and_time() -> None:
    value = uuid7(now_ms=1_700_000_000_123)
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"
    assert uuid7_ms(value) == 1_700_000_000_123


def test_uuid7_sorts_by_time_and_is_unique() -> None:
    ids = [uuid7(now_ms=1000 + i) for i in range(100)]
    assert ids == sorted(ids)
    assert len({uuid7() for _ in range(10_000)}) == 10_000
