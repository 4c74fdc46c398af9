"""pytest imports test files by basename (rootdir-relative, no packages): two test files with
the same name in tests/pure and tests/host break collection on a clean checkout."""
from collections import Counter
from pathlib import Path


def test_test_file_basenames_are_unique():
    names = Counter(p.name for p in Path(__file__).resolve().parents[1].rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
