"""bench/rfid_accuracy.py end to end at a tiny size: it prints every figure (no timing checks)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_S_MAX = 120


def test_rfid_accuracy_prints_every_figure_and_the_sweep() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "rfid_accuracy.py"),
            *("--passes", "40", "--sweep", "0.5,2", "--sweep-passes", "20"),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_S_MAX,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for label in (
        "true passes",
        "right direction",
        "phantom passes",
        "missed passes",
        "loads exact (per-GTIN qty)",
        "pass -> txn delay p50",
        "pass -> txn delay p99",
        "recognizer reads/s (one core)",
    ):
        assert label in out, out
    assert "40" in next(line for line in out.splitlines() if line.startswith("true passes"))
    assert out.count("\n   0.5 ") + out.count("\n     2 ") == 2, out
    assert out.count("first missed") == 3, out
