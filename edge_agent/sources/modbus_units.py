"""When to poll each unit on a Modbus bus: every cycle while it answers; after a run of
failures, with a jittered backoff so one dead unit does not spend every cycle in timeouts.

Pure (time passed in as monotonic seconds); the source owns one UnitHealth per unit.
"""

from edge_agent.backoff import Backoff

FAILURES_BEFORE_BACKOFF_MAX = 3
UNIT_BACKOFF_MIN_S = 0.5
UNIT_BACKOFF_MAX_S = 30.0


class UnitHealth:
    def __init__(
        self,
        unit: int,
        *,
        failures_before_backoff_max: int = FAILURES_BEFORE_BACKOFF_MAX,
        backoff: Backoff | None = None,
    ) -> None:
        assert failures_before_backoff_max >= 1
        self.unit = unit
        self.failures_before_backoff_max = failures_before_backoff_max
        self.failures = 0  # consecutive
        self.last_error: str | None = None
        self.next_poll_s = float("-inf")
        self._backoff = backoff or Backoff(UNIT_BACKOFF_MIN_S, UNIT_BACKOFF_MAX_S)

    @property
    def answering(self) -> bool:
        return self.failures == 0

    def due(self, now_s: float) -> bool:
        return now_s >= self.next_poll_s

    def answered(self) -> None:
        self.failures = 0
        self.last_error = None
        self.next_poll_s = float("-inf")
        self._backoff.reset()

    def failed(self, reason: str, now_s: float) -> None:
        self.failures += 1
        self.last_error = reason
        if self.failures >= self.failures_before_backoff_max:
            self.next_poll_s = now_s + self._backoff.next_s()

    def describe(self) -> str:
        if self.answering:
            return f"unit {self.unit} ok"
        return f"unit {self.unit} failing x{self.failures} ({self.last_error})"
