"""``workshop/benchmarks/lse_kernels.py`` (Joint Attention Inject's attention call at real size, piece by
piece, for a device call) runs its code path on the CPU's small shapes, with the host's attention and the
DiT driver's: every piece, finite times, and the policy's pieces cost more than the host's attention alone."""
from workshop.benchmarks import lse_kernels


def test_the_benchmark_runs_each_piece_on_the_cpu(host):
    result = lse_kernels.main(["--device", "cpu", "--tiny", "--repeats", "2", "--rounds", "1"])
    assert set(result["shapes"]) == set(lse_kernels.TINY)
    for rows in result["shapes"].values():
        assert len(rows) == 7 and all(r["wall_ms"] > 0 and r["issue_ms"] > 0 for r in rows.values())
        host = rows["host attention (SDPA, the host's kernel order)"]["wall_ms"]
        assert rows["Joint Attention Inject: replace, cross-attention injected"]["wall_ms"] > host
