"""What tests of the shelf's Modbus server and of the edge's Modbus source share: a clock the
test moves (readings and faults follow it) and constant cells the test can change."""

from dataclasses import dataclass

from simulators.shelf.cells import CellReading


@dataclass
class FakeClock:
    """The simulator's clock (`ShelfServer(clock_s=...)`); faults are switched by moving it."""

    t_s: float = 0.0

    def __call__(self) -> float:
        return self.t_s


class Cells:
    """A CellSource of constant readings; change `readings` to change what the server shows.
    `asked` records the time of every reading the server took."""

    def __init__(self, readings: dict[tuple[int, int], CellReading]) -> None:
        self.readings = readings
        self.asked: list[float] = []

    def reading(self, unit: int, channel: int, t_s: float) -> CellReading:
        self.asked.append(t_s)
        return self.readings[(unit, channel)]

    def cells(self) -> list[tuple[int, int]]:
        return list(self.readings)
