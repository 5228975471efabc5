"""The glassbox command: validation errors name the field, bad input never starts a workload."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from glassbox_api.resource import parse_resource
from glassbox_operator import runner
from glassbox_operator.cli import app
from tests.support.invalid_cases import valid

ROOT = Path(__file__).resolve().parents[2]
cli = CliRunner()


def _write(tmp_path: Path, *docs: dict, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return path


@pytest.fixture
def no_workloads(monkeypatch):
    """Fail the test if a workload would be started."""
    calls = []
    monkeypatch.setattr(runner, "workload_command", lambda args: calls.append(args) or 0)
    return calls


def test_validate_accepts_the_examples():
    res = cli.invoke(app, ["validate", *map(str, sorted((ROOT / "examples").glob("*.yaml")))])
    assert res.exit_code == 0, res.output
    assert "PretrainRun/tiny-coder" in res.output


def test_validate_names_field_and_fix(tmp_path):
    doc = valid("PretrainRun")
    doc["spec"]["training"]["strategy"] = "zero"
    res = cli.invoke(app, ["validate", str(_write(tmp_path, doc))])
    assert res.exit_code == runner.EXIT_INVALID
    assert "spec.training.strategy" in res.output and "fix:" in res.output


def test_validate_reports_unreadable_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed\n")
    res = cli.invoke(app, ["validate", str(bad)])
    assert res.exit_code == runner.EXIT_INVALID and "cannot be read as YAML" in res.output


def test_run_refuses_invalid_resource_before_starting_anything(tmp_path, no_workloads):
    doc = valid("PretrainRun")
    doc["spec"]["data"]["seqLength"] = 4
    res = cli.invoke(app, ["run", str(_write(tmp_path, doc))])
    assert res.exit_code == runner.EXIT_INVALID
    assert "spec.data.seqLength" in res.output
    assert no_workloads == []


def test_run_needs_a_name_for_multi_document_files(tmp_path, no_workloads):
    path = _write(tmp_path, valid("PretrainRun", "a"), valid("ScorerService", "b"))
    res = cli.invoke(app, ["run", str(path)])
    assert res.exit_code == runner.EXIT_INVALID and "--name" in res.output
    res = cli.invoke(app, ["run", str(path), "--name", "c"])
    assert res.exit_code == runner.EXIT_INVALID and "no resource named 'c'" in res.output
    assert no_workloads == []
    res = cli.invoke(app, ["run", str(path), "--name", "a", "--store", str(tmp_path / "store")])
    assert res.exit_code == 0
    (args,) = no_workloads
    assert args[0] == "pretrainrun" and args[args.index("--store") + 1] == str(tmp_path / "store")


def test_run_hands_the_workload_the_defaulted_spec(tmp_path, monkeypatch):
    seen = {}

    def fake(args):
        seen["doc"] = yaml.safe_load(Path(args[args.index("--spec") + 1]).read_text())
        return 0

    monkeypatch.setattr(runner, "workload_command", fake)
    assert cli.invoke(app, ["run", str(_write(tmp_path, valid("PretrainRun")))]).exit_code == 0
    assert seen["doc"]["spec"]["training"]["optimizer"]["beta2"] == 0.95
    assert parse_resource(seen["doc"]).name == "x"


def test_local_run_id_is_stable_and_follows_the_spec():
    a = parse_resource(valid("PretrainRun"))
    b = parse_resource(valid("PretrainRun"))
    assert runner.local_run_id(a) == runner.local_run_id(b)
    changed = valid("PretrainRun")
    changed["spec"]["data"]["seqLength"] = 128
    assert runner.local_run_id(parse_resource(changed)) != runner.local_run_id(a)


def test_crds_check_passes_on_the_committed_tree(monkeypatch):
    monkeypatch.chdir(ROOT)
    res = cli.invoke(app, ["crds", "--check"])
    assert res.exit_code == 0, res.output


def test_run_without_the_workload_programs_says_which_extra_to_install(tmp_path, monkeypatch):
    # Every kind has a program now; what can still be missing is the programs themselves (the
    # operator-only install). Refused plainly with exit 3, nothing published, nothing faked.
    monkeypatch.setattr(runner, "_workloads_installed", lambda: False)
    res = cli.invoke(app, ["run", str(ROOT / "examples" / "kgharvest-tiny.yaml"), "--store", str(tmp_path)])
    assert res.exit_code == runner.EXIT_NOT_RUNNABLE
    assert "not installed" in res.output and "pip install" in res.output
    assert not any(tmp_path.iterdir()), "nothing may be published for a kind that cannot run"


