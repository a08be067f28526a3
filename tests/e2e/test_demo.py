"""`stockwire demo` end to end: broker, aggregator, edge and scanner simulators, checked against
the scenario's ground truth."""

import os
import pty
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DEMO_TIMEOUT_S = 180


def stockwire(*args: str) -> list[str]:
    return [sys.executable, "-m", "stockwire", "--log-level", "WARNING", *args]


@pytest.mark.e2e
@pytest.mark.parametrize("broker", ["auto", "amqtt"])
def test_demo_ledger_matches_ground_truth(tmp_path: Path, broker: str) -> None:
    done = subprocess.run(
        stockwire("demo", "--duration", "90", "--check", "--workdir", str(tmp_path)),
        stdin=subprocess.DEVNULL,  # not a terminal: exits with the check's code
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
        env=os.environ | {"STOCKWIRE_DEMO_BROKER": broker},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "CHECK OK" in done.stdout, output
    if broker == "amqtt":
        assert "broker (amqtt)" in done.stdout
    # mosquitto enforces the logins the demo made; amqtt cannot, and the aggregator says so
    amqtt = "broker (amqtt)" in done.stdout
    assert ("a login per edge and for the aggregator" in done.stdout) == (not amqtt), output
    assert ("accepts clients WITHOUT credentials" in done.stderr) == amqtt, output
    summaries = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert summaries, output
    assert "dead letters 0" in summaries[-1], output
    assert "stays up" not in done.stdout, output
    assert list(tmp_path.glob("run-*/ledger.sqlite")), "the ledger file was kept in --workdir"


@dataclass(frozen=True, slots=True)
class Interrupted:
    seen: str  # the output up to the line it waited for
    rest: str  # after Ctrl-C
    returncode: int
    running_then: bool  # still running when the line came
    statuses: tuple[int, int]  # GET /stock with the printed key, then without one


def run_until_then_ctrl_c(
    command: list[str], stdin: int, until: Callable[[str], bool]
) -> Interrupted:
    """Run the demo until a line is `until`, try its API, then SIGINT it (Ctrl-C)."""
    with subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        watchdog = threading.Timer(DEMO_TIMEOUT_S, proc.kill)  # never hang the suite
        watchdog.start()
        try:
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if until(line):
                    break
            running = proc.poll() is None
            statuses = _try_the_printed_key("".join(seen))
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
        finally:
            watchdog.cancel()
            proc.kill()
    return Interrupted("".join(seen), rest, proc.returncode, running, statuses)


@pytest.mark.e2e
def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    command = stockwire("demo", "--workdir", str(tmp_path))
    # the first live summary: everything is up
    run = run_until_then_ctrl_c(command, subprocess.DEVNULL, lambda line: line.startswith("["))
    assert run.returncode == 0, run.seen + run.rest
    assert "demo: stopped" in run.rest
    assert run.statuses == (200, 401)
    legend = run.seen  # said once, before the first live line
    assert "demo: live line: txns = stock transactions" in legend
    assert "ledger movements = the double-entry postings" in legend
    assert re.search(r"rejected reads = deliberate noise: the scenario sends [1-9]", legend)
    assert "live line" not in run.rest


@pytest.mark.e2e
def test_demo_from_a_terminal_keeps_the_api_up_after_check_ok(tmp_path: Path) -> None:
    """stdin a TTY (a pty): after CHECK OK the API answers until Ctrl-C, then exit 0."""
    command = stockwire("demo", "--duration", "90", "--check", "--workdir", str(tmp_path))
    controller, terminal = pty.openpty()
    try:
        run = run_until_then_ctrl_c(command, terminal, lambda line: "stays up" in line)
    finally:
        os.close(controller)
        os.close(terminal)
    assert "CHECK OK" in run.seen, run.seen
    assert run.running_then, run.seen  # still running after the check
    assert run.statuses == (200, 401)
    assert run.returncode == 0, run.seen + run.rest
    assert "demo: stopped" in run.rest


def _try_the_printed_key(output: str) -> tuple[int, int]:
    """GET /stock with the admin key the demo printed, then without one: the HTTP statuses."""
    api = re.search(r"^demo: API (http://\S+)", output, re.MULTILINE)
    key = re.search(r"^demo: admin API key, made for this run: (swk_\S+)$", output, re.MULTILINE)
    assert api is not None, output
    assert key is not None, output
    statuses = []
    for headers in ({"Authorization": f"Bearer {key.group(1)}"}, {}):
        request = urllib.request.Request(f"{api.group(1)}/stock", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(int(response.status))
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
    return statuses[0], statuses[1]


@pytest.mark.e2e
def test_demo_check_fails_when_time_runs_out(tmp_path: Path) -> None:
    """The small site needs ~20 s of scanning: 3 s cannot be enough, so --check must say no."""
    done = subprocess.run(
        stockwire("demo", "--duration", "3", "--check", "--workdir", str(tmp_path)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CHECK FAILED" in done.stdout
