"""bench/shelf_accuracy.py end to end at a tiny size: it prints every figure (no timing checks)."""

from tests.bench_run import run_bench


def test_shelf_accuracy_prints_every_figure_and_the_sweep() -> None:
    out = run_bench(
        "shelf_accuracy.py",
        *("--events", "150", "--sweep", "0.5,4", "--sweep-events", "60", "--seed", "3"),
    )
    for label in (
        "events of lanes' own items",
        "counted exactly",
        "silent wrong counts",
        "flagged to review",
        "missed events",
        "foreign items flagged",
        "phantom transactions",
        "event -> txn delay p50",
        "event -> txn delay p99",
        "best any counter could do",
        "ours / best",
        "counts of clean lanes right",
        "counts of foreign lanes right",
    ):
        assert label in out, out
    own = next(line for line in out.splitlines() if line.startswith("events of lanes' own"))
    assert int(own.split()[-1]) > 50, own
    assert out.count("\n   0.5 ") + out.count("\n     4 ") == 2, out
    assert "first falls" in out, out
