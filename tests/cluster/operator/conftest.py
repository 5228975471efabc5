"""The operator under test: `glassbox operator --standalone` as a subprocess on the test cluster,
so a test can kill and restart it. One per module; resources live in a namespace per module."""

from __future__ import annotations

import contextlib

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.support.cluster import Cluster

ROOT = Path(__file__).resolve().parents[3]
GLASSBOX = str(Path(sys.executable).parent / "glassbox")


class Operator:
    def __init__(self, cluster: Cluster, s3, workdir: Path, kubeconfig: Path | None = None,
                 scope: list[str] | None = None, defaults: dict | None = None):
        self.cluster, self.s3, self.workdir = cluster, s3, workdir
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.scope = scope or ["-A"]
        self.proc: subprocess.Popen | None = None
        self.config = workdir / "config.yaml"
        values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
        storage = dict(values["storage"], endpoint=s3.host, secure=s3.secure)
        self.config.write_text(yaml.safe_dump({
            "apiVersion": "glassbox.dev/v1alpha1", "kind": "OperatorConfig",
            "nodePools": values["nodePools"], "storage": storage, "defaults": {**values["defaults"], **(defaults or {})},
            "localStateDir": str(workdir / "local"),
        }))
        self.starts = 0

    def start(self) -> None:
        env = {**self.cluster.env(), "KUBECONFIG": str(self.kubeconfig), **self.s3.env()}
        self.starts += 1
        log = open(self.workdir / f"operator-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [GLASSBOX, "operator", "--standalone", *self.scope, "--config", str(self.config), "--resync-seconds", "1",
             "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        p = self.workdir / f"operator-{self.starts}.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    ns = f"op-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@contextlib.contextmanager
def exiting_operator(cluster: Cluster, s3, tmp_path_factory, prefix: str, exit_code: str) -> Iterator[tuple[Operator, str]]:
    """A namespace with an operator of its own (namespaced) whose configuration puts
    `glassbox.dev/kwok-exit: <exit_code>` on every workload pod, so KWOK ends each with that code."""
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    client = s3.client()
    if not client.bucket_exists("glassbox"):
        client.make_bucket("glassbox")
    op = Operator(cluster, s3, tmp_path_factory.mktemp(f"{prefix}-operator"), scope=["--namespace", ns],
                  defaults={"podAnnotations": {"glassbox.dev/kwok-exit": exit_code}})
    op.start()
    try:
        yield op, ns
    finally:
        op.kill()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, s3, namespace: str, tmp_path_factory) -> Iterator[Operator]:
    client = s3.client()
    if not client.bucket_exists("glassbox"):
        client.make_bucket("glassbox")
    op = Operator(cluster, s3, tmp_path_factory.mktemp("operator"))
    op.start()
    yield op
    op.kill()
