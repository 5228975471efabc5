"""glassbox installed as a user would on the real-pod cluster: `helm install` of the chart with the
built images, the operator a real pod on the real node, the store the cluster's S3 server on the
node's bridge address, a `real` node pool, and a namespace for workloads with the storage Secret.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml

from glassbox_api.manifest import Manifest
from tests.support import bins
from tests.support.node import RealCluster

CHART = bins.REPO / "charts" / "glassbox"
BUCKET = "glassbox"
STORAGE_SECRET = "glassbox-storage"
OPERATOR_SECRET = "glassbox-operator-s3"


@dataclass
class Release:
    """An installed release: its namespace, the workloads' namespace, its values."""

    name: str
    namespace: str
    workloads: str
    values: dict[str, Any]


def chart_values(real: RealCluster, peering: str) -> dict[str, Any]:
    """Values pointing the chart at the built images, the bridge-address S3 and the real pool."""
    repository, tag = real.image("operator").rsplit(":", 1)
    return {
        "image": {"registry": "", "repository": repository, "tag": tag, "pullPolicy": "Never"},
        # The Ray head (backend ray) sized for the one 2-CPU node, as a user of a small cluster would.
        "defaults": {"images": {name: real.image(name) for name in ("torch", "jax", "serving")},
                     "rayHead": {"cpu": "250m", "memory": "3Gi"}},
        "nodeSelector": {"glassbox.dev/pool": real.settings["NODE_POOL"]},
        "peering": {"name": peering},
        "storage": {"endpoint": real.s3.host, "secure": False, "bucket": BUCKET, "prefix": "runs",
                    "region": real.s3.region, "credentialsSecret": STORAGE_SECRET,
                    "operatorCredentialsSecret": OPERATOR_SECRET},
        # One node: the real pool, and the cpu pool (where the Ray head goes) pointed at it too.
        "nodePools": {pool: {"resource": "none", "count": 0, "tolerations": [],
                             "nodeSelector": {"glassbox.dev/pool": real.settings["NODE_POOL"]}}
                      for pool in ("real", "cpu")},
    }


def _restricted_namespace(real: RealCluster, name: str) -> None:
    real.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})


def _s3_secret(real: RealCluster, name: str, namespace: str) -> None:
    real.cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                        "stringData": {"AWS_ACCESS_KEY_ID": real.s3.access_key,
                                       "AWS_SECRET_ACCESS_KEY": real.s3.secret_key}})


def install(real: RealCluster, workdir: Path) -> Release:
    """helm install into fresh namespaces and wait until the operator pod is Ready on the real node."""
    suffix = uuid.uuid4().hex[:6]
    release = Release(name=f"gb-{suffix}", namespace=f"glassbox-{suffix}", workloads=f"runs-{suffix}",
                      values=chart_values(real, f"gb-{suffix}"))
    for ns in (release.namespace, release.workloads):
        _restricted_namespace(real, ns)
    _s3_secret(real, OPERATOR_SECRET, release.namespace)
    _s3_secret(real, STORAGE_SECRET, release.workloads)
    client = real.s3.client()
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    values_file = workdir / f"values-{suffix}.yaml"
    values_file.write_text(yaml.safe_dump(release.values))
    real.cluster.helm("install", release.name, str(CHART), "--namespace", release.namespace,
                      "-f", str(values_file), "--wait", "--timeout", "300s", timeout=360)
    return release


def uninstall(real: RealCluster, release: Release) -> None:
    real.cluster.helm("uninstall", release.name, "--namespace", release.namespace, "--wait", "--timeout", "120s",
                      check=False, timeout=180)
    for ns in (release.workloads, release.namespace):
        real.cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def apply(real: RealCluster, release: Release, doc: dict[str, Any], workdir: Path) -> None:
    """`kubectl apply -f` the resource written to a file, as a user would, in the workloads' namespace."""
    path = workdir / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    real.cluster.kubectl("apply", "-n", release.workloads, "-f", str(path))


def run_to_end(real: RealCluster, release: Release, kind: str, doc: dict[str, Any], workdir: Path, *,
               timeout: float = 900, each: Callable[[], None] | None = None) -> dict[str, Any]:
    """`kubectl apply -f` the resource as a file, as a user would, and wait until it has ended
    (`each` runs on every poll, e.g. to watch its pods); it must have Succeeded. Returns the
    resource. A timeout or a failure raises AssertionError with the cluster's diagnostics."""
    name = doc["metadata"]["name"]
    apply(real, release, doc, workdir)

    def ended() -> str | None:
        if each is not None:
            each()
        phase = ((real.cluster.get(kind, name, release.workloads) or {}).get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    try:
        phase = real.cluster.wait_for(ended, timeout=timeout, interval=2, what=f"{kind}/{name} to end")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{diagnostics(real, release)}") from None
    obj = real.cluster.get(kind, name, release.workloads)
    assert phase == "Succeeded", f"{kind}/{name}: {obj['status'].get('message')}\n{diagnostics(real, release)}"
    return obj


def read_manifest(real: RealCluster, run_uri: str) -> Manifest:
    """manifest.json of a run (s3://bucket/key...) through the minio SDK."""
    return Manifest.model_validate(json.loads(read_object(real, run_uri, "manifest.json")))


def read_object(real: RealCluster, run_uri: str, path: str) -> bytes:
    """One object of a run's folder."""
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    return real.s3.client().get_object(bucket, f"{key.rstrip('/')}/{path}").read()


def object_keys(real: RealCluster, run_uri: str) -> set[str]:
    """Every key under a run's folder, relative to it."""
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    prefix = key.rstrip("/") + "/"
    return {o.object_name[len(prefix):] for o in real.s3.client().list_objects(bucket, prefix, recursive=True)}


def diagnostics(real: RealCluster, release: Release) -> str:
    """What to look at when a run does not end as expected: pods, events, the operator's log tail."""
    c = real.cluster
    parts = [c.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout,
             c.kubectl("get", "events", "-n", release.workloads, check=False).stdout[-3000:],
             c.kubectl("logs", "-n", release.namespace, "-l", "app.kubernetes.io/name=glassbox", "--tail=60",
                       check=False).stdout]
    for pod in c.kubectl("get", "pods", "-n", release.workloads, "-o", "name", check=False).stdout.split():
        parts.append(f"--- {pod}\n" + c.kubectl("logs", "-n", release.workloads, pod, "--tail=40",
                                                 check=False).stdout)
    return "\n".join(parts)
