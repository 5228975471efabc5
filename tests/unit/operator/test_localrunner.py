"""The local backend's runner: real subprocesses, state on disk, found again after an operator restart."""

from __future__ import annotations

import os
import time
from pathlib import Path

from glassbox_api.constants import LABEL_UID

from glassbox_operator.localrunner import LocalRunner
from glassbox_operator.render.common import MISSING


def child(argv: list[str], name: str = "r-a0", uid: str = "u1") -> dict:
    return {"apiVersion": "glassbox.dev/local", "kind": "LocalProcess",
            "metadata": {"name": name, "namespace": "ns", "labels": {LABEL_UID: uid}},
            "spec": {"argv": argv, "env": {"GB_TEST": "x"}, "document": {"kind": "PretrainRun", "spec": {}}}}


def py(code: str) -> list[str]:
    return ["python", "-c", code]


def until(fn, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def test_start_runs_once_and_succeeds(tmp_path: Path):
    r = LocalRunner(tmp_path)
    c = child(py("import os, sys, json; d = json.load(open(sys.argv[1])); assert d['kind'] == 'PretrainRun' and os.environ['GB_TEST'] == 'x'") + ["{spec}"])
    assert r.observe(c) == MISSING
    r.ensure(c)
    pid = (tmp_path / "ns/u1/r-a0/pid").read_text()
    r.ensure(c)  # level-based: a second ensure starts nothing
    assert (tmp_path / "ns/u1/r-a0/pid").read_text() == pid
    st = until(lambda: (s := r.observe(c)).state != "Running" and s)
    assert (st.state, st.reason) == ("Succeeded", "Completed"), (st, (tmp_path / "ns/u1/r-a0/log").read_text())


def test_exit_code_and_last_log_line_in_the_failure(tmp_path: Path):
    r = LocalRunner(tmp_path)
    c = child(py("print('loading'); print('boom: out of cheese'); raise SystemExit(3)"))
    r.ensure(c)
    st = until(lambda: (s := r.observe(c)).state != "Running" and s)
    assert st.state == "Failed" and st.reason == "ProcessFailed"
    assert "exit code 3" in st.message and "boom: out of cheese" in st.message


def test_missing_program_fails_with_its_exit_code(tmp_path: Path):
    r = LocalRunner(tmp_path)
    c = child(["/nonexistent/glassbox-workload", "--spec", "{spec}"])
    r.ensure(c)
    st = until(lambda: (s := r.observe(c)).state != "Running" and s)
    assert st.state == "Failed" and "exit code 127" in st.message


def test_missing_workload_module_fails(tmp_path: Path):
    r = LocalRunner(tmp_path)
    c = child(["python", "-m", "glassbox_no_such_module", "--spec", "{spec}"])
    r.ensure(c)
    st = until(lambda: (s := r.observe(c)).state != "Running" and s)
    assert st.state == "Failed" and "exit code 1" in st.message and "glassbox_no_such_module" in st.message


def test_a_restarted_operator_finds_its_process_instead_of_starting_another(tmp_path: Path):
    flag = tmp_path / "go"
    marker = tmp_path / "starts"
    c = child(py(f"import os, time\nopen({str(marker)!r}, 'a').write('x')\n"
                 f"while not os.path.exists({str(flag)!r}): time.sleep(0.02)"))
    first = LocalRunner(tmp_path / "state")
    first.ensure(c)
    assert until(lambda: marker.exists())
    del first  # the operator process dies; the workload (own session) keeps running
    second = LocalRunner(tmp_path / "state")
    assert second.observe(c).state == "Running"
    second.ensure(c)
    flag.write_text("")
    st = until(lambda: (s := second.observe(c)).state != "Running" and s)
    assert st.state == "Succeeded"
    assert marker.read_text() == "x"  # started exactly once


def test_process_gone_without_an_exit_code_is_lost(tmp_path: Path):
    r = LocalRunner(tmp_path)
    c = child(py("pass"))
    d = tmp_path / "ns/u1/r-a0"
    d.mkdir(parents=True)
    (d / "pid").write_text("999999999")  # no such process, and it never wrote an exit code
    st = r.observe(c)
    assert st.state == "Failed" and st.reason == "ProcessLost"


def test_stop_kills_the_process_group_and_ensure_starts_again(tmp_path: Path):
    r = LocalRunner(tmp_path)
    c = child(py("import time; time.sleep(60)"))
    r.ensure(c)
    pid = int((tmp_path / "ns/u1/r-a0/pid").read_text())
    assert r.observe(c).state == "Running"
    r.stop("ns", "u1", "r-a0")
    assert r.observe(c) == MISSING
    try:
        os.kill(pid, 0)
        alive = True
    except OSError:
        alive = False
    assert not alive
    r.ensure(c)
    assert r.observe(c).state == "Running"
    r.stop("ns", "u1", "r-a0")


def test_a_permanent_exit_code_is_a_permanent_failure(tmp_path: Path):
    from glassbox_api.podcontract import ExitCode

    r = LocalRunner(tmp_path)
    bad, flaky = child(py(f"raise SystemExit({int(ExitCode.BAD_INPUT)})")), child(py("raise SystemExit(1)"), name="r-a1")
    r.ensure(bad)
    r.ensure(flaky)
    st = until(lambda: (s := r.observe(bad)).state != "Running" and s)
    assert st.state == "Failed" and st.permanent and "exit code 4" in st.message
    st = until(lambda: (s := r.observe(flaky)).state != "Running" and s)
    assert st.state == "Failed" and not st.permanent


def test_a_model_server_is_ready_once_it_prints_its_serving_line(tmp_path: Path):
    """A service's local process is Running but not ready until `serving: URL` (DESIGN.md section 6);
    then ready, with that URL as the endpoint."""
    flag = tmp_path / "go"
    c = child(py(f"import os, time\nprint('loading weights', flush=True)\n"
                 f"while not os.path.exists({str(flag)!r}): time.sleep(0.02)\n"
                 "print('serving: http://127.0.0.1:43210', flush=True)\ntime.sleep(60)"), name="r-srv")
    r = LocalRunner(tmp_path)
    r.ensure(c)
    try:
        st = until(lambda: (s := r.observe(c)).state == "Running" and s)
        assert st.reason == "ProcessRunning" and not st.ready and st.endpoint is None
        flag.write_text("x")
        st = until(lambda: (s := r.observe(c)).ready and s)
        assert st and st.state == "Running" and st.endpoint == "http://127.0.0.1:43210"
    finally:
        r.stop("ns", "u1", "r-srv")
