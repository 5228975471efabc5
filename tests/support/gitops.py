"""What Flux and Argo CD say about an object, asked of their real libraries.

`health(objs)` runs glassbox-health (hack/gitops: sigs.k8s.io/cli-utils kstatus for Flux, the chart's
Argo CD health script under gopher-lua as Argo CD runs it), built once per content of hack/gitops by
hack/gitops/build.sh into the binary cache. `crd_dirs()`: the Flux and Argo CD CRDs that
hack/build-bins.sh takes from their Go modules. A build failure raises BuildError (the tests that
need it error, never skip).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support import bins
from tests.support.bins import BuildError

REPO = bins.REPO
BUILD_SCRIPT = REPO / "hack" / "gitops" / "build.sh"
HEALTH_LUA = REPO / "charts" / "glassbox" / "files" / "argocd-health.lua"
EXAMPLES = REPO / "examples" / "gitops"
ARGOCD_CM = EXAMPLES / "argocd" / "argocd-cm.yaml"
"""The argocd-cm snippet users add; `health(..., argocd_cm=ARGOCD_CM)` picks scripts from it as Argo CD does."""


@functools.cache
def health_binary() -> Path:
    """The glassbox-health binary (built on first use: ~30 s cold, a few file hashes warm)."""
    proc = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    path = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(path, os.X_OK):
        raise BuildError(f"{BUILD_SCRIPT} printed {path}, which is not an executable")
    return path


def run_health(objs: Iterable[dict[str, Any]], script: Path = HEALTH_LUA,
               argocd_cm: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run glassbox-health on the objects with the Lua script, or with the scripts an argocd-cm
    ConfigMap holds for each object's group/kind; the raw process (exit 1: a tool could not answer)."""
    stdin = "\n".join(json.dumps(o) for o in objs)
    source = ["--argocd-cm", str(argocd_cm)] if argocd_cm else ["--lua", str(script)]
    return subprocess.run([str(health_binary()), *source], input=stdin, capture_output=True, text=True, timeout=60)


def health(objs: Iterable[dict[str, Any]], script: Path = HEALTH_LUA,
           argocd_cm: Path | None = None) -> list[dict[str, str]]:
    """One {kind, name, kstatus, kstatusMessage, argo, argoMessage} per object, in order."""
    proc = run_health(objs, script, argocd_cm)
    if proc.returncode != 0:
        raise AssertionError(f"glassbox-health exited {proc.returncode}: {proc.stderr}\n{proc.stdout}")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def verdict(objs: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kstatus, Argo CD health) per object."""
    return [(r["kstatus"], r["argo"]) for r in health(objs)]


def crd_dirs() -> list[Path]:
    """The folders of Flux's (Kustomization, GitRepository) and Argo CD's (Application) CRD YAML,
    taken from their Go modules by hack/build-bins.sh (run if anything is missing)."""
    bins.ensure_binaries()
    return [Path(p) for p in bins._print_table()["gitops-crds"].split(":")]  # noqa: SLF001 - the one table of cache paths


def table(rows: Iterable[tuple[str, dict[str, str]]]) -> str:
    """A fixed-width table of (situation, health result) for logs and notes; a result's optional
    "why" (the status that decided) gets a column of its own."""
    rows = list(rows)
    why = any("why" in r for _, r in rows)
    head = f"{'situation':<36} {'kstatus (Flux)':<15} {'Argo CD':<12} "
    lines = [head + (f"{'status (phase/condition)':<50} " if why else "") + "message (kstatus | Argo CD)"]
    for situation, r in rows:
        line = f"{situation:<36} {r['kstatus']:<15} {r['argo']:<12} "
        line += f"{r.get('why', ''):<50} " if why else ""
        lines.append(line + f"{r['kstatusMessage']} | {r['argoMessage']}")
    return "\n".join(lines)
