"""Run a benchmark script from bench/ as a subprocess, for the smoke tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_S_MAX = 120


def run_bench(name: str, *args: str) -> str:
    """The script's stdout; it must exit 0 within RUN_S_MAX."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *args],
        capture_output=True,
        text=True,
        timeout=RUN_S_MAX,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
