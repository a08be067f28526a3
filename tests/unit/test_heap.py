import gc
from collections.abc import Iterator

import pytest

from stockwire import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    made_at_startup = [object() for _ in range(3)]
    gc.unfreeze()
    _, middle_before, old_before = gc.get_threshold()
    heap.settle()
    assert gc.get_freeze_count() > len(made_at_startup)
    young, middle, old = gc.get_threshold()
    assert young == heap.YOUNG_THRESHOLD
    assert (middle, old) == (middle_before, old_before)
