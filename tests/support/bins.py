"""The test cluster's binaries: built once from Go modules by hack/build-bins.sh, cached by version.

The cache lives outside the repo (GLASSBOX_CACHE, default ~/.cache/glassbox); a warm cache costs one
directory check per entry, a cold one a full build (see hack/README.md for timings).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
BUILD_SCRIPT = HACK / "build-bins.sh"

NAMES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
    "helm",
    "versitygw",
)


class BuildError(RuntimeError):
    """A binary or CRD set could not be built; the message carries the build log's tail."""


def cache_dir() -> Path:
    """Root of the binary/CRD cache (GLASSBOX_CACHE or ~/.cache/glassbox)."""
    return Path(os.environ.get("GLASSBOX_CACHE") or Path.home() / ".cache" / "glassbox")


def versions() -> dict[str, str]:
    """The pinned versions of hack/versions.env (KUBE_VERSION, ETCD_VERSION, ...)."""
    out: dict[str, str] = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _print_table() -> dict[str, str]:
    """NAME=PATH lines of `build-bins.sh --print` (the one table of where each binary lives)."""
    out = subprocess.run(
        [str(BUILD_SCRIPT), "--print"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@functools.cache
def ensure_binaries() -> dict[str, Path]:
    """Build what is missing (once per process) and return {name: absolute path} for NAMES."""
    log = cache_dir() / "build-bins.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        proc = subprocess.run([str(BUILD_SCRIPT)], stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        raise BuildError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); full log {log}:\n{tail}")
    table = _print_table()
    paths = {name: Path(table[name]) for name in NAMES}
    missing = [str(p) for p in paths.values() if not os.access(p, os.X_OK)]
    if missing:
        raise BuildError(f"build-bins.sh succeeded but these are missing: {missing}")
    return paths


def path(name: str) -> Path:
    """Absolute path of one built binary (builds on first use)."""
    try:
        return ensure_binaries()[name]
    except KeyError:
        raise KeyError(f"unknown binary {name!r}; known: {', '.join(NAMES)}") from None


def crd_dirs() -> list[Path]:
    """Directories holding the third-party CRD YAML (KubeRay, JobSet, KServe), built if missing."""
    ensure_binaries()
    return [Path(p) for p in _print_table()["crds"].split(":")]


def bin_path_entries() -> list[Path]:
    """Directories to put on PATH so kubectl, helm, kwokctl, etcd and versitygw resolve to ours."""
    seen: dict[Path, None] = {}
    for p in ensure_binaries().values():
        seen.setdefault(p.parent, None)
    return list(seen)
