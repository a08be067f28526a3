"""One Prometheus metric as a program's GET /metrics exposes it (the README's tables list these).

Each program subclasses it with its own `prefix`; only its metrics module imports
prometheus_client.
"""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class MetricSpec:
    prefix: ClassVar[str] = ""

    name: str  # without the prefix; counters without _total
    kind: str  # counter, gauge or histogram
    doc: str
    labels: tuple[str, ...] = ()

    @property
    def exposed(self) -> str:
        return self.prefix + self.name + ("_total" if self.kind == "counter" else "")
