"""The pod contract (glassbox_api.podcontract): argv, environment names, exit codes, run id, find_run."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path

import pytest

from glassbox_api import podcontract
from glassbox_api.manifest import Manifest, RunRecord, run_prefix
from glassbox_api.podcontract import Env, ExitCode, argv, is_permanent, run_id, torchrun_argv
from glassbox_api.store import LocalStore, find_run, find_runs

ROOT = Path(__file__).resolve().parents[2]


def test_argv_runs_the_entry_module():
    assert argv("PretrainRun", "/etc/glassbox/spec/resource.yaml") == [
        "python", "-m", "glassbox_workloads", "pretrainrun", "--spec", "/etc/glassbox/spec/resource.yaml"]


def test_torchrun_argv_keeps_the_module_flag():
    cmd = torchrun_argv("PretrainRun", "/s.yaml", nnodes=2, nproc_per_node=8, node_rank="$(JOB_COMPLETION_INDEX)",
                        master_addr="w-workers-0-0.w", master_port=29500)
    assert cmd[0] == "torchrun"
    # torchrun's options, then -m MODULE, then the module's own arguments.
    i = cmd.index("-m")
    assert cmd[i + 1:] == ["glassbox_workloads", "pretrainrun", "--spec", "/s.yaml"]
    assert all(a.startswith("--") for a in cmd[1:i])
    assert "--nnodes=2" in cmd and "--nproc-per-node=8" in cmd and "--node-rank=$(JOB_COMPLETION_INDEX)" in cmd
    assert "--master-addr=w-workers-0-0.w" in cmd and "--master-port=29500" in cmd


def test_torchrun_parses_the_command():
    run = pytest.importorskip("torch.distributed.run")
    cmd = torchrun_argv("ShardedFinetune", "/s.yaml", nnodes=2, nproc_per_node=1, node_rank="0",
                        master_addr="h", master_port=1234)
    args = run.parse_args(cmd[1:])
    assert args.module is True
    assert args.training_script == "glassbox_workloads"
    assert args.training_script_args == ["shardedfinetune", "--spec", "/s.yaml"]
    assert (args.nnodes, args.node_rank, args.master_addr, args.master_port) == ("2", 0, "h", 1234)


def test_exit_codes():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4]
    assert podcontract.PERMANENT_EXIT_CODES == frozenset({2, 3, 4})
    assert [is_permanent(c) for c in range(6)] == [False, False, True, True, True, False]
    assert not is_permanent(137)  # killed (OOM, SIGKILL): transient


def _documented_constants(cls_name: str) -> dict[str, str | None]:
    """Attribute name -> the string literal right after it (its docstring) in the class body."""
    tree = ast.parse((ROOT / "api/glassbox_api/podcontract.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    out: dict[str, str | None] = {}
    body = cls.body
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            nxt = body[i + 1] if i + 1 < len(body) else None
            doc = nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) else None
            out[node.targets[0].id] = doc
    return out


def test_every_env_name_is_documented_with_who_sets_and_reads_it():
    docs = _documented_constants("Env")
    assert docs.keys() == Env.names().keys()
    for attr, doc in docs.items():
        text = " ".join((doc or "").split())
        assert "Set by" in text and "read by" in text.lower(), f"Env.{attr} needs a docstring: who sets it, who reads it"
    values = list(Env.names().values())
    assert len(values) == len(set(values)), "two constants name the same variable"


def test_every_exit_code_is_documented():
    docs = _documented_constants("ExitCode")
    assert set(docs) == {c.name for c in ExitCode} and all(docs.values())


def _glassbox_names_in(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for root in paths:
        for f in root.rglob("*.py"):
            names |= set(re.findall(r"\b(GLASSBOX_[A-Z0-9_]*[A-Z0-9])\b", f.read_text(encoding="utf-8")))
    return names


def test_every_glassbox_env_name_in_the_code_is_in_the_contract():
    """A GLASSBOX_* name read or set in api/, operator/ or workloads/ is a contract constant, or a
    test-only fault hook (glassbox_workloads.runtime.faults)."""
    faults = ROOT / "workloads/glassbox_workloads/runtime/faults.py"
    fault_names = set(re.findall(r"\b(GLASSBOX_[A-Z0-9_]*[A-Z0-9])\b", faults.read_text())) if faults.exists() else set()
    used = _glassbox_names_in([ROOT / "api", ROOT / "operator", ROOT / "workloads"])
    known = set(Env.names().values()) | fault_names
    # A prefix in prose ("GLASSBOX_S3_*") is not a variable.
    unknown = {n for n in used - known if not any(k.startswith(n + "_") for k in known)}
    assert not unknown, f"GLASSBOX_* names outside the pod contract: {sorted(unknown)}"


# ---- run id ------------------------------------------------------------------------------------
SPEC = {"model": {"preset": "tiny"}, "data": {"source": "synthetic"}}


def test_run_id_is_the_uid_when_there_is_one():
    assert run_id("PretrainRun", "tiny", "default", SPEC, "0f3c1a2b-1111-2222-3333-444455556666") == \
        "0f3c1a2b-1111-2222-3333-444455556666"


def test_run_id_without_uid_keeps_the_ids_of_existing_local_runs():
    # The formula `glassbox run` has always used (runner.local_run_id), so old runs resume.
    expected = hashlib.sha256(f"PretrainRun/tiny/{json.dumps(SPEC, sort_keys=True)}".encode()).hexdigest()[:8]
    assert run_id("PretrainRun", "tiny", "default", SPEC, None) == expected
    assert run_id("PretrainRun", "tiny", "default", SPEC, "") == expected
    assert run_id("PretrainRun", "tiny", "other", SPEC) == expected  # the namespace is in the path


def test_run_id_follows_kind_name_and_spec():
    base = run_id("PretrainRun", "tiny", "default", SPEC)
    assert run_id("PretrainRun", "tiny", "default", dict(SPEC)) == base
    assert run_id("PretrainRun", "tiny2", "default", SPEC) != base
    assert run_id("ShardedFinetune", "tiny", "default", SPEC) != base
    assert run_id("PretrainRun", "tiny", "default", {**SPEC, "seed": 1}) != base


def test_run_id_matches_glassbox_run():
    runner = pytest.importorskip("glassbox_operator.runner")
    (r,) = runner.load_resources(ROOT / "examples/pretrain-tiny.yaml")
    assert run_id(r.info.kind, r.name, r.namespace, r.spec.wire(), None) == runner.local_run_id(r)


# ---- find_run ----------------------------------------------------------------------------------
def _publish(root: LocalStore, namespace: str, kind: str, name: str, uid: str, updated: str | None) -> str:
    prefix = run_prefix(namespace, kind, name, uid)
    run = root.sub(prefix)
    run.write_json("run.json", RunRecord(kind=kind, name=name, namespace=namespace, uid=uid, spec={},
                                         created="2026-01-01T00:00:00Z").to_json())
    if updated is not None:
        m = Manifest(kind=kind, name=name, namespace=namespace, uid=uid)
        run.write_json("manifest.json", {**m.to_json(), "updated": updated})
    return prefix


def test_find_run_picks_the_newest_manifest(tmp_path):
    root = LocalStore(tmp_path)
    old = _publish(root, "default", "PretrainRun", "tiny", "aaaaaaaa", "2026-01-02T00:00:00Z")
    new = _publish(root, "default", "PretrainRun", "tiny", "bbbbbbbb", "2026-01-03T00:00:00Z")
    _publish(root, "default", "PretrainRun", "tiny-2", "cccccccc", "2026-01-09T00:00:00Z")
    _publish(root, "team", "PretrainRun", "tiny", "dddddddd", "2026-01-08T00:00:00Z")
    _publish(root, "default", "ShardedFinetune", "tiny", "eeeeeeee", "2026-01-07T00:00:00Z")
    found = find_run(root, "default", "PretrainRun", "tiny")
    assert found is not None and found.uri() == root.sub(new).uri()
    assert [r.uri() for r in find_runs(root, "default", "pretrainrun", "tiny")] == [root.sub(new).uri(), root.sub(old).uri()]
    assert find_run(root, None, None, "tiny").uri().endswith("team/pretrainrun/tiny-dddddddd")
    assert find_run(root, None, "ShardedFinetune", "tiny").uri().endswith("default/shardedfinetune/tiny-eeeeeeee")
    assert find_run(root, "team", None, "tiny").uri().endswith("team/pretrainrun/tiny-dddddddd")
    assert find_run(root, "default", "PretrainRun", "absent") is None
    assert find_run(root, "nowhere", "PretrainRun", "tiny") is None


def test_find_run_sees_a_run_with_only_its_record(tmp_path):
    root = LocalStore(tmp_path)
    _publish(root, "default", "PretrainRun", "tiny", "aaaaaaaa", None)
    found = find_run(root, "default", "PretrainRun", "tiny")
    assert found is not None and found.exists("run.json")
