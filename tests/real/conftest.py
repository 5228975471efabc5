"""The real-pod cluster, once per session (tests/real/**, marked `real`).

`real_cluster`: `hack/images.sh build` (cached by content), then `hack/cluster.sh up` with
GLASSBOX_REAL_NODE=1 and GLASSBOX_ENGINES=1 (a real node, glassbox-real-0, beside the KWOK pools;
the KubeRay, JobSet and KServe controllers; S3 on the node's bridge address), then
`hack/images.sh load` into the node's containerd. At the end `down`, and the host must be as it was
before (sysctls, paths, mounts, links, iptables chains, cgroups: hack/node.sh host-state), or the
session errors. A host that cannot run it fails the tests that use it with the reason; nothing is
skipped. GLASSBOX_TEST_REAL_IMAGES=0 leaves the images out (for working on the node alone); tests
that need them then fail saying so.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import bins, realchart
from tests.support import node as node_support
from tests.support.cluster import ClusterError

IMAGES_SCRIPT = bins.HACK / "images.sh"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that take the node down (marked `node_down_last` by name) run after every other."""
    items.sort(key=lambda item: "node_down" in item.name)


def _images(action: str, env: dict[str, str]) -> dict[str, str]:
    """hack/images.sh ACTION; for `refs`, the name=ref lines as a dict."""
    proc = subprocess.run([str(IMAGES_SCRIPT), action], env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise ClusterError(f"hack/images.sh {action} failed (exit {proc.returncode}): {proc.stderr[-4000:]}")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def _drop_stale_images(address: str, current: dict[str, str]) -> None:
    """containerd's root is a cache that outlives sessions and the kubelet's image GC is off (built
    images cannot be pulled again): other keys of our images would pile up (torch is 6.5 GB each)."""
    ctr = ["ctr", "-a", address, "-n", "k8s.io", "images"]
    listed = subprocess.run([*ctr, "ls", "-q"], capture_output=True, text=True, check=True).stdout.split()
    ours = tuple(ref.rsplit(":", 1)[0] + ":" for ref in current.values())
    stale = [ref for ref in listed if ref.startswith(ours) and ref not in current.values()]
    if stale:
        subprocess.run([*ctr, "rm", "--sync", *stale], capture_output=True, check=True)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[node_support.RealCluster]:
    problems = node_support.host_problems()
    if problems:
        pytest.fail("this host cannot run the real node: " + "; ".join(problems))
    with_images = os.environ.get("GLASSBOX_TEST_REAL_IMAGES", "1") != "0"
    if with_images:
        _images("build", dict(os.environ))
    before = node_support.host_state()
    real = node_support.start_real_cluster(Path(tempfile.mkdtemp(prefix="glassbox-real-")))
    real.host_before = before
    try:
        if with_images:
            env = {**os.environ, "GLASSBOX_CONTAINERD_ADDRESS": real.env["GLASSBOX_CONTAINERD_ADDRESS"]}
            real.images = _images("refs", env)
            _drop_stale_images(real.env["GLASSBOX_CONTAINERD_ADDRESS"], real.images)  # room first
            _images("load", env)
        yield real
    finally:
        real.cluster.stop()
        left = sorted(set(node_support.host_state()) ^ set(before))
        assert not left, f"the host differs after hack/cluster.sh down (- before, + after): {left}"


@pytest.fixture(scope="session")
def real_release(real_cluster: node_support.RealCluster,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[realchart.Release]:
    """glassbox `helm install`ed on the real cluster (tests/support/realchart.py), once per session."""
    installed = realchart.install(real_cluster, tmp_path_factory.mktemp("chart"))
    yield installed
    realchart.uninstall(real_cluster, installed)
