"""The embedded default: validate a resource file and run its workload on this machine.

The operator package never imports the workload code (it would pull in torch or JAX); it starts
`python -m glassbox_workloads` as a subprocess, exactly as the local backend does in a cluster.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from rich.console import Console

from glassbox_api.kinds import KINDS
from glassbox_api.podcontract import ENTRY_MODULE, ExitCode, run_id
from glassbox_api.resource import InvalidResource, Resource, parse_resource

from .manifests import dump, load_documents

console = Console(stderr=True, soft_wrap=True)

# Exit codes the CLI uses, so scripts can tell a bad file from a failed run.
EXIT_INVALID = int(ExitCode.INVALID_SPEC)
EXIT_NOT_RUNNABLE = int(ExitCode.NOT_RUNNABLE)


def _report(err: InvalidResource, source: Path) -> None:
    console.print(f"[bold red]{source}[/]: {err.name} is invalid:")
    for e in err.errors:
        fix = f"  [dim]fix: {e.fix}[/]" if e.fix else ""
        console.print(f"  [yellow]{e.path}[/]: {e.message}{fix}")


def load_resources(path: Path) -> list[Resource]:
    """Parse every document of a file; raises InvalidResource on the first bad one."""
    docs = load_documents(path)
    if not docs:
        raise InvalidResource(str(path), [])
    return [parse_resource(d, source=str(path)) for d in docs]


def validate_files(files: list[Path]) -> int:
    bad = 0
    for f in files:
        try:
            for r in load_resources(f):
                console.print(f"[green]ok[/] {f}: {r.info.kind}/{r.name}")
        except InvalidResource as err:
            bad += 1
            _report(err, f)
        except Exception as err:  # unreadable YAML
            bad += 1
            console.print(f"[bold red]{f}[/]: cannot be read as YAML: {err}")
    return EXIT_INVALID if bad else 0


def local_run_id(resource: Resource) -> str:
    """A stable id for a local run: the same resource re-run resumes in the same directory."""
    return run_id(resource.info.kind, resource.name, resource.namespace, resource.wire()["spec"])


def _workloads_installed() -> bool:
    return importlib.util.find_spec("glassbox_workloads.__main__") is not None


def workload_command(args: list[str]) -> int:
    """Run `python -m glassbox_workloads ARGS`, streaming its output; returns its exit code."""
    if not _workloads_installed():
        console.print(
            "[bold red]the workload programs are not installed here[/]: install glassbox with the "
            "extra for this kind (e.g. pip install 'glassbox[train]' or 'glassbox[jax]')."
        )
        return EXIT_NOT_RUNNABLE
    proc = subprocess.Popen([sys.executable, "-m", ENTRY_MODULE, *args])
    # SIGTERM goes on to the workload (a model server drains and exits 0); Ctrl-C reaches it through
    # the terminal's process group already, so here it only must not kill us before the workload ends.
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda sig, frame: proc.send_signal(sig)),
                signal.SIGINT: signal.signal(signal.SIGINT, lambda sig, frame: None)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_local(path: Path, store: Optional[str] = None, name: Optional[str] = None,
              host: Optional[str] = None, port: Optional[int] = None) -> int:
    """`glassbox run FILE`: validate, then run the workload with a local (or S3) store."""
    try:
        resources = load_resources(path)
    except InvalidResource as err:
        _report(err, path)
        return EXIT_INVALID
    if name is not None:
        resources = [r for r in resources if r.name == name]
        if not resources:
            console.print(f"[bold red]{path}[/] has no resource named {name!r}")
            return EXIT_INVALID
    if len(resources) != 1:
        names = ", ".join(f"{r.info.kind}/{r.name}" for r in resources)
        console.print(f"[bold red]{path}[/] holds several resources ({names}): pick one with --name")
        return EXIT_INVALID
    resource = resources[0]
    if resource.info.kind not in KINDS:
        return EXIT_INVALID
    store = store or os.environ.get("GLASSBOX_STORE") or str(Path("glassbox-runs").resolve())
    with tempfile.TemporaryDirectory(prefix="glassbox-run-") as tmp:
        spec_file = Path(tmp) / "resource.yaml"
        spec_file.write_text(dump(resource.wire()), encoding="utf-8")
        return workload_command(
            [
                resource.info.kind.lower(),
                "--spec", str(spec_file),
                "--store", store,
                "--run-id", local_run_id(resource),
                *(["--host", host] if host else []),
                *(["--port", str(port)] if port is not None else []),
            ]
        )
