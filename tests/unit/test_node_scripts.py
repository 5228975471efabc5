"""The real node's scripts without a node: hack/node/configs.sh renders configs the daemons parse
with the settings this machine needs, hack/node/oci-image.py packs reproducible archives that
containerd can import by name, and the scripts refuse bad usage. (The node itself: tests/real.)"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import tarfile
import tomllib
from pathlib import Path

import yaml

from tests.support import node as node_support

HACK = Path(__file__).resolve().parents[2] / "hack"


def render_configs(tmp_path: Path) -> Path:
    settings = node_support.node_settings()
    env = {**settings, "NODE_DIR": str(tmp_path / "node"), "KUBECONFIG_PATH": "/k/kubeconfig.yaml",
           "PKI_DIR": "/k/pki", "CTRD_ROOT": str(tmp_path / "root"), "CTRD_STATE": str(tmp_path / "state"),
           "SOCK": str(tmp_path / "run" / "containerd.sock"), "PATH": "/usr/bin:/bin"}
    subprocess.run(["bash", "-c", f"set -euo pipefail; source {HACK / 'node' / 'configs.sh'}; write_configs"],
                   env=env, check=True, capture_output=True, text=True)
    return tmp_path / "node"


def test_node_addresses_are_consistent() -> None:
    s = node_support.node_settings()
    pods = ipaddress.ip_network(s["NODE_POD_CIDR"])
    assert ipaddress.ip_address(s["NODE_HOST_IP"]) in pods
    services = ipaddress.ip_network(s["NODE_SERVICE_CIDR"])
    assert ipaddress.ip_address(s["NODE_SERVICE_FIRST_IP"]) == next(services.hosts())
    assert not pods.overlaps(services)
    assert s["NODE_CONTAINERD_SOCKET"].startswith(s["NODE_RUN_DIR"] + "/")
    assert s["PAUSE_IMAGE"].endswith(":" + s["PAUSE_VERSION"])


def test_containerd_config_restricts_oom_adj_and_uses_our_cni_and_pause(tmp_path: Path) -> None:
    node = render_configs(tmp_path)
    s = node_support.node_settings()
    conf = tomllib.loads((node / "containerd.toml").read_text())
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == s["PAUSE_IMAGE"]
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"] == str(node / "cni" / "net.d")
    assert conf["grpc"]["address"] == str(tmp_path / "run" / "containerd.sock")
    # Nothing under containerd's default paths on the host.
    assert conf["plugins"]["io.containerd.internal.v1.opt"]["path"].startswith(str(tmp_path / "root"))
    cni = json.loads((node / "cni" / "net.d" / "10-glassbox.conflist").read_text())
    bridge = cni["plugins"][0]
    assert bridge["bridge"] == s["NODE_BRIDGE"] and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": s["NODE_POD_CIDR"], "gateway": s["NODE_HOST_IP"]}]]
    assert bridge["ipam"]["dataDir"] == str(node / "cni" / "ipam")


def test_kubelet_and_kube_proxy_configs_fit_this_host(tmp_path: Path) -> None:
    node = render_configs(tmp_path)
    s = node_support.node_settings()
    kubelet = yaml.safe_load((node / "kubelet.yaml").read_text())
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["clusterDNS"] == [s["NODE_HOST_IP"]] and kubelet["address"] == s["NODE_HOST_IP"]
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authorization"]["mode"] == "Webhook"
    assert kubelet["imageGCHighThresholdPercent"] == 100  # built images cannot be pulled again
    assert kubelet["podLogsDir"].startswith(str(node))
    proxy = yaml.safe_load((node / "kube-proxy.yaml").read_text())
    assert proxy["mode"] == "iptables" and proxy["clusterCIDR"] == s["NODE_POD_CIDR"]
    assert proxy["iptables"]["localhostNodePorts"] is False  # would set route_localnet
    assert proxy["conntrack"]["maxPerCore"] == 0  # leaves the host's conntrack sysctls alone
    for key in ("healthzBindAddress", "metricsBindAddress"):
        assert proxy[key].startswith("127.0.0.1:")
    corefile = (node / "Corefile").read_text()
    assert f"bind {s['NODE_HOST_IP']}" in corefile and "forward" not in corefile


def _oci(tmp_path: Path, out: str) -> tuple[str, Path]:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    (rootfs / "pause").write_bytes(b"\x7fELF not really")
    (rootfs / "pause").chmod(0o755)
    archive = tmp_path / out
    proc = subprocess.run(["python3", str(HACK / "node" / "oci-image.py"), str(rootfs), "glassbox.local/x:1",
                           str(archive), "--entrypoint", "/pause"], check=True, capture_output=True, text=True)
    return proc.stdout.strip(), archive


def test_oci_archive_is_reproducible_and_named_for_ctr_import(tmp_path: Path) -> None:
    first, archive = _oci(tmp_path, "a.tar")
    (tmp_path / "rootfs" / "pause").touch()  # a new mtime changes nothing
    second, _ = _oci(tmp_path, "b.tar")
    assert first == second and first.startswith("sha256:")
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        manifest = json.loads(tar.extractfile(f"blobs/sha256/{first.split(':')[1]}").read())
        config = json.loads(tar.extractfile(f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}").read())
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "glassbox.local/x:1"
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "65535:65535"


def test_scripts_refuse_bad_usage() -> None:
    proc = subprocess.run([str(HACK / "node.sh"), "sideways"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([str(HACK / "host-packages.sh"), "gpu"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown group gpu" in proc.stderr
