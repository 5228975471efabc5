"""Workloads read their environment once, into a RunContext (runtime/context.py): no other module reads
os.environ (writing it for third-party libraries, e.g. CUBLAS_WORKSPACE_CONFIG, is allowed)."""

from __future__ import annotations

import re
from pathlib import Path

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads" / "glassbox_workloads"
READS = re.compile(r"os\.environ\.get\(|os\.environ\[|os\.getenv\(|in os\.environ\b|os\.environ\s*(?:if|or|\))|= os\.environ\b")
ONLY_READER = WORKLOADS / "runtime" / "context.py"


def test_only_the_run_context_reads_the_environment():
    readers = {}
    for path in sorted(WORKLOADS.rglob("*.py")):
        if path == ONLY_READER:
            continue
        lines = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if READS.search(line)]
        if lines:
            readers[str(path.relative_to(WORKLOADS))] = lines
    assert not readers, f"read the environment through RunContext (runtime/context.py), not here: {readers}"


def test_the_pattern_catches_reads():
    for line in ('x = os.environ.get("A")', 'os.environ["A"]', 'os.getenv("A")', '"A" in os.environ',
                 "f(os.environ if env is None else env)"):
        assert READS.search(line), line
    for line in ('os.environ.setdefault("A", "1")', "os.environ.update(A='1')"):
        assert not READS.search(line), line
