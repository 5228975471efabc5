"""The real-pod cluster: hack/cluster.sh with GLASSBOX_REAL_NODE=1 (hack/node.sh) and GLASSBOX_ENGINES=1.

`start_real_cluster(workdir)` checks that this host can run a real node (root, cgroups, the tools
hack/host-packages.sh installs), records the host state, starts the cluster and returns a
`RealCluster`: the `Cluster` to talk to, the S3 server pods reach, and the env file's values.
`host_state()` is what hack/node.sh changes on the host, for comparing before up with after down.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import bins
from tests.support.cluster import CLUSTER_SCRIPT, Cluster, ClusterError, start_cluster
from tests.support.s3 import S3Server

NODE_SCRIPT = bins.HACK / "node.sh"
NODE_ENV = bins.HACK / "node" / "node.env"
OCI_IMAGE = bins.HACK / "node" / "oci-image.py"
PROBE_SRC = bins.REPO / "tests" / "real" / "probe"
REAL_NAME = "glassbox-real"
# cluster.sh's S3 server on the bridge address (pods reach it), the engines, the real node.
REAL_ENV = {"GLASSBOX_REAL_NODE": "1", "GLASSBOX_ENGINES": "1", "GLASSBOX_CLUSTER_S3": "1"}


def node_settings() -> dict[str, str]:
    """The KEY=value lines of hack/node/node.env (NODE_NAME, NODE_HOST_IP, PAUSE_IMAGE, ...)."""
    out: dict[str, str] = {}
    for line in NODE_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def host_state() -> list[str]:
    """What the real node changes on this host, one fact a line (hack/node.sh host-state)."""
    proc = subprocess.run([str(NODE_SCRIPT), "host-state"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ClusterError(f"hack/node.sh host-state failed: {proc.stderr.strip()}")
    return proc.stdout.splitlines()


def host_problems() -> list[str]:
    """Why this host cannot run the real node (empty when it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: containerd, the kubelet, the bridge and iptables need root")
    if not Path("/sys/fs/cgroup").is_dir():
        problems.append("no /sys/fs/cgroup")
    if not Path("/proc/sys/net/bridge").is_dir():
        problems.append("no bridge netfilter (/proc/sys/net/bridge): Services on the bridge cannot work")
    return problems


def parse_env_file(text: str) -> dict[str, str]:
    """`export K='v'` lines of `hack/cluster.sh env` as a dict (PATH's "${PATH}" tail dropped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("export "):
            continue
        key, _, value = line[len("export "):].partition("=")
        words = shlex.split(value.replace('"${PATH}"', ""))
        out[key] = words[0] if words else ""
    return out


@dataclass
class RealCluster:
    """The real-pod cluster: the API, the S3 server on the bridge address, the node's settings."""

    cluster: Cluster
    s3: S3Server
    env: dict[str, str]
    settings: dict[str, str] = field(default_factory=node_settings)
    host_before: list[str] = field(default_factory=list)  # host_state() before up
    images: dict[str, str] = field(default_factory=dict)  # name -> ref (hack/images.sh refs)

    def image(self, name: str) -> str:
        """The ref of a built and loaded image; fails when the session left the images out."""
        if name not in self.images:
            raise AssertionError(f"image {name!r} not loaded (GLASSBOX_TEST_REAL_IMAGES=0?); have {sorted(self.images)}")
        return self.images[name]

    @property
    def node_name(self) -> str:
        return self.settings["NODE_NAME"]

    @property
    def host_ip(self) -> str:
        return self.settings["NODE_HOST_IP"]

    def node(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """hack/node.sh for this cluster (down, up, status)."""
        assert self.cluster.workdir is not None
        env = {**os.environ, "GLASSBOX_CLUSTER_NAME": self.cluster.name,
               "GLASSBOX_CLUSTER_DIR": str(self.cluster.workdir)}
        return subprocess.run([str(NODE_SCRIPT), *args], env=env, capture_output=True, text=True,
                              timeout=timeout)


def start_real_cluster(workdir: Path) -> RealCluster:
    """Start the real-pod cluster with its state under workdir; ClusterError says why it could not."""
    problems = host_problems()
    if problems:
        raise ClusterError("this host cannot run the real node: " + "; ".join(problems))
    cluster = start_cluster(workdir, name=REAL_NAME, extra_env=REAL_ENV, timeout=900)
    env_file = subprocess.run([str(CLUSTER_SCRIPT), "env"], capture_output=True, text=True, check=True,
                              env={**os.environ, "GLASSBOX_CLUSTER_NAME": REAL_NAME,
                                   "GLASSBOX_CLUSTER_DIR": str(workdir)}).stdout
    env = parse_env_file(env_file)
    s3 = S3Server(endpoint=env["GLASSBOX_S3_ENDPOINT"], access_key=env["GLASSBOX_S3_ACCESS_KEY"],
                  secret_key=env["GLASSBOX_S3_SECRET_KEY"])
    return RealCluster(cluster=cluster, s3=s3, env=env)


def probe_image(containerd_address: str) -> str:
    """Build (cached by content) and import the probe image (tests/real/probe); returns its ref.

    A static Go binary in a one-layer image: the node's tests need no registry and no image build.
    """
    files = sorted(p for p in PROBE_SRC.iterdir() if p.is_file())
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in [*files, OCI_IMAGE]))
    key = digest.hexdigest()[:12]
    ref = f"glassbox.local/probe:{key}"
    archive = bins.cache_dir() / "images" / f"probe-{key}.tar"
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            rootfs = Path(tmp) / "rootfs"
            rootfs.mkdir()
            env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}
            subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(rootfs / "probe"), "."],
                           cwd=PROBE_SRC, env=env, check=True, capture_output=True, timeout=300)
            subprocess.run(["python3", str(OCI_IMAGE), str(rootfs), ref, str(archive), "--entrypoint", "/probe"],
                           check=True, capture_output=True, timeout=60)
    ctr = ["ctr", "-a", containerd_address, "-n", "k8s.io"]
    listed = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True, check=True).stdout
    if ref not in listed.split():
        subprocess.run([*ctr, "images", "import", str(archive)], capture_output=True, check=True, timeout=120)
    return ref
