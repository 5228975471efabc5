"""hack/test.sh, the README's test command (and .ci/run's): with no test path it runs the suite as two
pytest sessions at once (the system lane: tests/ without tests/unit; the unit lane: tests/unit), a
lane that selects nothing is not a failure while the suite as a whole selecting nothing is, and a
lane's failure is the command's. Run here against this interpreter's environment (installed, so the
script's set-up steps are no-ops)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # each call collects the suite (twice, at once)


def test_sh(*args: str) -> subprocess.CompletedProcess[str]:
    # No background image build from these calls (the whole-suite path would start one).
    env = {**os.environ, "GLASSBOX_VENV": sys.prefix, "GLASSBOX_TEST_REAL_IMAGES": "0"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(["bash", str(ROOT / "hack" / "test.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


test_sh.__test__ = False  # a helper, not a test


def test_a_suite_that_selects_no_test_fails_although_each_lane_exits_5():
    p = test_sh("-q", "-k", "zzz_no_test_is_named_this")
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr[-3000:]
    assert "collected no tests: that is a failure" in p.stderr
    assert "lane system exited 5" in p.stdout and "lane unit exited 5" in p.stdout


def test_the_lanes_run_at_once_and_an_empty_lane_beside_a_passing_one_passes():
    p = test_sh("-q", "-k", "test_no_two_plain_test_folders_hold_a_module_of_the_same_name")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    # the unit lane ran the one test, its lines carry the lane's name; the system lane had none
    assert any(line.startswith("[unit] ") and "1 passed" in line for line in p.stdout.splitlines()), p.stdout[-3000:]
    assert "lane system exited 5" in p.stdout and "lane unit exited 0" in p.stdout


def test_a_lane_that_fails_fails_the_command_with_its_exit_code():
    p = test_sh("--no-such-pytest-option")
    assert p.returncode == 4, p.stdout[-3000:] + p.stderr[-3000:]  # pytest's usage error
    assert "lane system exited 4" in p.stdout and "lane unit exited 4" in p.stdout
    assert "background" not in p.stdout  # GLASSBOX_TEST_REAL_IMAGES=0: no image build started


def test_a_test_path_runs_one_session_over_exactly_that():
    p = test_sh("-q", "tests/unit/test_test_layout.py")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "lane " not in p.stdout and "1 passed" in p.stdout
