"""Run a real VictoriaMetrics (Debian's `victoria-metrics`) on a free loopback port (tests, demo).

It speaks the InfluxDB v2 write API (`/api/v2/write`, line protocol: a series is named
`{measurement}_{field}`, tags become labels) and gives points back through `/api/v1/export`
(JSON lines, values and millisecond timestamps). Storage is a temp dir; retention is long so
that points with old event times are kept.
"""

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from simulators.ports import free_port

HOST = "127.0.0.1"
START_WAIT_S = 20.0
RETENTION = "100y"


def victoria_metrics_binary() -> str | None:
    return shutil.which("victoria-metrics") or next(
        (p for p in ("/usr/bin/victoria-metrics",) if Path(p).exists()), None
    )


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # {measurement}_{field}
    labels: dict[str, str]  # the point's tags
    values: list[float]
    timestamps_ms: list[int]


class VictoriaMetrics:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = victoria_metrics_binary()
        if binary is None:
            raise FileNotFoundError(
                "victoria-metrics binary not found (apt-get install victoria-metrics)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "VictoriaMetrics":
        log = (self.workdir / "victoria-metrics.log").open("ab")
        with log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own binary and flags
                [
                    self.binary,
                    f"-httpListenAddr={HOST}:{self.port}",
                    f"-storageDataPath={self.workdir / 'data'}",
                    f"-retentionPeriod={RETENTION}",
                    "-loggerLevel=WARN",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy()
        except TimeoutError:
            self.kill()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_WAIT_S
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise TimeoutError(f"victoria-metrics exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"victoria-metrics not healthy after {START_WAIT_S}s")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """Graceful (SIGTERM): it flushes what it holds to storage."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def export(self, match: str = '{__name__!=""}') -> list[Series]:
        """Every stored series matching the selector, after making recent writes searchable."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):  # noqa: S310
            pass
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as answer:  # noqa: S310
            lines = answer.read().decode().splitlines()
        found = []
        for text in lines:
            row = json.loads(text)
            labels = dict(row["metric"])
            name = labels.pop("__name__")
            found.append(Series(name, labels, row["values"], row["timestamps"]))
        return sorted(found, key=lambda s: (s.name, sorted(s.labels.items())))

    def __enter__(self) -> "VictoriaMetrics":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
