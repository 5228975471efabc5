"""Session fixtures for the real test parts; the logic lives in tests/support/.

`cluster`: a real control plane (hack/cluster.sh via tests/support/cluster.py), or the cluster in
KUBECONFIG when GLASSBOX_TEST_USE_EXISTING_CLUSTER=1. `s3`: versitygw on 127.0.0.1, or the server in
GLASSBOX_TEST_S3_ENDPOINT. Both start once per session; a part that cannot be built or started makes
the tests that use it error with the reason (never a skip).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import cluster as cluster_support
from tests.support import s3 as s3_support

_TESTS = Path(__file__).resolve().parent
_DIR_MARKERS = {"cluster": pytest.mark.cluster, "e2e": pytest.mark.e2e, "real": pytest.mark.real}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests/cluster/** with `cluster`, tests/e2e/** with `e2e`, tests/real/** with `real` (select with -m)."""
    for item in items:
        try:
            top = Path(item.path).resolve().relative_to(_TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        if top in _DIR_MARKERS:
            item.add_marker(_DIR_MARKERS[top])


# State dirs come from mkdtemp, not tmp_path_factory: pytest prunes its old numbered dirs, which may
# belong to a session (of another worktree user) whose cluster still runs.
@pytest.fixture(scope="session")
def cluster() -> Iterator[cluster_support.Cluster]:
    if cluster_support.use_existing():
        yield cluster_support.existing_cluster()
        return
    started = cluster_support.start_cluster(Path(tempfile.mkdtemp(prefix="glassbox-cluster-")))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[s3_support.S3Server]:
    if s3_support.use_existing():
        yield s3_support.existing_s3()
        return
    server = s3_support.start_s3(Path(tempfile.mkdtemp(prefix="glassbox-s3-")))
    try:
        yield server
    finally:
        server.close()
