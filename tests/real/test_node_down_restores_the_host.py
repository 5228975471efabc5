"""`hack/node.sh down` undoes every host change the real node made (runs after every other real
test: tests/real/conftest.py orders tests named node_down last; the session's cluster down then
finds no node to stop)."""

from __future__ import annotations

from tests.support import node as node_support
from tests.support.node import RealCluster


def test_node_down_restores_sysctls_mounts_links_chains_cgroups_and_paths(real_cluster: RealCluster) -> None:
    before = set(real_cluster.host_before)
    up = set(node_support.host_state())
    # While up, the host carries the node's changes (so the comparison below can fail).
    changed = up - before
    assert f"link {real_cluster.settings['NODE_BRIDGE']}" in changed
    assert any(line.startswith("cgroup ") and line.endswith("/kubepods") for line in changed)
    assert any(line.startswith("chain iptables nat KUBE-SERVICES") for line in changed)
    assert any(line.startswith("mount ") for line in changed)

    proc = real_cluster.node("down")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = set(node_support.host_state())
    assert sorted(after - before) == [] and sorted(before - after) == []
    # The node is gone from the cluster too.
    assert real_cluster.cluster.get("node", real_cluster.node_name) is None
