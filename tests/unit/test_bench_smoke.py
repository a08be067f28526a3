"""Each benchmark runs end to end at a tiny size and prints its figure lines (no timing checks)."""

import pytest

from simulators.mosquitto import mosquitto_binary
from tests.bench_run import run_bench

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")


def figure(out: str, label: str) -> list[str]:
    """The words after `label` on its figure line."""
    line = next(line for line in out.splitlines() if line.strip().startswith(label))
    return line.strip().removeprefix(label).split()


def test_ingest_prints_rates_and_ratio() -> None:
    out = run_bench("ingest.py", "--txns", "300", "--batch", "50", "--window", "2")
    assert "end to end" in out
    assert "raw sqlite bulk insert" in out
    assert "ratio end to end / raw" in out
    assert "300 receipts" in out


def test_ingest_cost_prints_each_phase_and_the_ceiling() -> None:
    out = run_bench("ingest_cost.py", "--txns", "200", "--batch", "20")
    for label in ("validate TxnBatch", "post (one DB transaction)", "ack", "ledger events"):
        assert figure(out, label)[1] == "us/txn", out
    assert "100 receipts counted" in out  # the first half of 10 batches is warm-up
    assert figure(out, "one core's ceiling")[1] == "txn/s"


def test_latency_prints_percentiles_and_acks_everything() -> None:
    out = run_bench("latency.py", "--rate", "200", "--seconds", "1", "--warmup-s", "0.2")
    for label in ("p50", "p90", "p99", "max", "target p99"):
        assert f"  {label} " in out
    assert figure(out, "not acked") == ["0"], out
    assert figure(out, "CPU edge (this process)")[-1] == "us/txn"
    assert int(figure(out, "edge SQLite commits")[0].removesuffix("/s")) > 0


def test_journal_prints_the_baselines_and_each_phase() -> None:
    out = run_bench(
        "journal.py", "--rate", "200", "--seconds", "1", "--warmup-s", "0.3", "--max-seconds", "1"
    )
    for label in ("fsync of a 100-byte append", "SQLite WAL commit, one row, FULL"):
        assert figure(out, label)[-1] == "ms", out
    assert out.count("phase: ") == 2
    journaled = [line for line in out.splitlines() if "readings/s journaled" in line]
    assert len(journaled) == 2
    assert all(int(line.split()[-1].replace(",", "")) > 0 for line in journaled), out
    assert figure(out, "CPU per reading")[-1] == "us"


def test_edge_rss_prints_rss_baseline_and_commits_every_scan() -> None:
    out = run_bench("edge_rss.py", "--rate", "20", "--warmup-s", "0.5", "--seconds", "1.5")
    assert "after warm-up" in out
    assert "baseline: idle python + asyncio" in out
    assert "and an RFID portal" in out
    sent, _, committed = figure(out, "item scans sent / their txns committed")
    assert int(sent) > 0
    assert sent == committed


def test_rfid_throughput_prints_the_baseline_and_the_source() -> None:
    out = run_bench("rfid_throughput.py", "--reports", "8", "--tags-per-report", "50")
    assert figure(out, "sllurp decode alone (baseline)")[1] == "reads/s"
    assert figure(out, "source: framing+decode+bridge")[1] == "reads/s"
    assert figure(out, "source + PortalRecognizer")[1] == "reads/s"
    assert "target >= 50,000 reads/s (with recognizer)" in out


def test_modbus_poll_prints_cpu_per_poll_and_rss() -> None:
    out = run_bench("modbus_poll.py", "--devices", "2", "--seconds", "3", "--warmup-s", "1")
    assert "2 shelves x 4 lanes" in out
    polls = float(figure(out, "polls/s (target devices x hz)")[0])
    assert polls > 0, out
    for label in ("edge CPU s / 1,000 polls", "edge RSS MB", "simulator CPU s / 1,000 requests"):
        assert float(figure(out, label)[0]) > 0, out
