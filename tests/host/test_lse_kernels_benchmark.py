"""``workshop/benchmarks/lse_kernels.py`` (Joint Attention Inject's attention call at real size, piece by
piece, for a device call) runs its code path on the CPU's small shapes, with the host's attention and the
DiT driver's: every piece, finite times. Their order is not asserted: at the test's two calls a loop on a shared
CPU it is noise (a run beside a benchmark timed the host's attention alone at 2.25 ms and the edit's call at
0.44 ms); the figures that matter are a device's (docs/measurements.md)."""
from workshop.benchmarks import lse_kernels


def test_the_benchmark_runs_each_piece_on_the_cpu(host):
    result = lse_kernels.main(["--device", "cpu", "--tiny", "--repeats", "2", "--rounds", "1"])
    assert set(result["shapes"]) == set(lse_kernels.TINY)
    for rows in result["shapes"].values():
        assert len(rows) == 7
        assert all(0 < r["wall_ms"] < float("inf") and 0 < r["issue_ms"] < float("inf") for r in rows.values())
