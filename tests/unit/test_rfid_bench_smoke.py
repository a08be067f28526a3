"""bench/rfid_accuracy.py end to end at a tiny size: it prints every figure (no timing checks)."""

from tests.bench_run import run_bench


def test_rfid_accuracy_prints_every_figure_and_the_sweep() -> None:
    out = run_bench(
        "rfid_accuracy.py", *("--passes", "40", "--sweep", "0.5,2", "--sweep-passes", "20")
    )
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
