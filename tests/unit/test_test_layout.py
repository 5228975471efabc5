"""The suite's own layout: helper modules beside tests must not shadow each other.

Test folders without __init__.py put their own folder on sys.path (pytest's prepend import mode), so
two helpers with one file name (say planted.py for two kinds) make whichever folder is collected first
win, and the other folder's tests fail to import, in the full run only."""

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_plain_test_folders_hold_a_module_of_the_same_name():
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name in ("__init__.py", "conftest.py") or (path.parent / "__init__.py").exists():
            continue
        seen[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each (they shadow each other on sys.path): {clashes}"
