"""A steady report of a device that stays unreachable: a few log lines, not one per retry.

A scanner unplugged for a week is retried every few seconds (jittered backoff with a max); a
WARNING per retry would bury every other line of the log. The first failure is a WARNING, the
retries after it are DEBUG, a WARNING with the count follows at most once per interval while it
lasts, and the line that says the device is back gives the count and the duration.
"""

import logging
import time
from collections.abc import Callable

OUTAGE_REPORT_INTERVAL_S = 300.0


class OutageReport:
    """Log lines for one device's failed connects; `monotonic` is injected for tests."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        interval_s: float = OUTAGE_REPORT_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert interval_s > 0, interval_s
        self._log = log
        self._what = what
        self.interval_s = interval_s
        self._monotonic = monotonic
        self.failures = 0  # since the device was last up
        self._down_since_s: float | None = None
        self._reported_s = 0.0
        self._unreported = 0

    @property
    def down(self) -> bool:
        return self._down_since_s is not None

    def failed(self, reason: str, retry_s: float) -> None:
        """One failed attempt; the next is in `retry_s`."""
        now_s = self._monotonic()
        self.failures += 1
        self._unreported += 1
        if self._down_since_s is None:
            self._down_since_s = self._reported_s = now_s
            self._unreported = 0
            self._log.warning(
                "%s: %s; retrying with backoff, reporting at most every %.0f s until it is back",
                self._what,
                reason,
                self.interval_s,
            )
        elif now_s - self._reported_s >= self.interval_s:
            self._log.warning(
                "%s: still down after %.0f s: %d failed attempt(s) since the last report, %d in"
                " all; last: %s",
                self._what,
                now_s - self._down_since_s,
                self._unreported,
                self.failures,
                reason,
            )
            self._reported_s, self._unreported = now_s, 0
        else:
            self._log.debug("%s: %s; retrying in %.1f s", self._what, reason, retry_s)

    def recovered(self) -> str:
        """Forget the outage; what it was (" after N failed attempt(s) over S s"), or ""."""
        if self._down_since_s is None:
            return ""
        down_s = self._monotonic() - self._down_since_s
        text = f" after {self.failures} failed attempt(s) over {down_s:.0f} s"
        self._down_since_s, self.failures, self._unreported = None, 0, 0
        return text
