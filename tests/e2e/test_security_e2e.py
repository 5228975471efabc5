"""The chart-configured credentials path, end to end against the real S3 server (issue 17).

The chart is rendered by the real helm with `storage.operatorCredentialsSecret` set; its
ServiceAccount, RBAC and ConfigMap are applied to the real control plane, and the operator runs
with only that ServiceAccount's token, the config.yaml read back from the chart's ConfigMap, and an
environment with nothing S3 in it. It reads the credentials Secret through the API (the one `get`
the chart grants), so: without the Secret the manifest is unreadable and the status says why; with
it, progress and fromRun work from what is published in S3.

Then a full lifecycle with a failure and a retry (a local-backend PretrainRun, allowed by this
release's values, its workload SIGKILLed mid-run and resumed): the test credentials appear nowhere
in the spec, the status, the events, the children, the operator's log or the workloads' logs."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from glassbox_api.manifest import CheckpointEntry, Manifest
from tests.support.cluster import Cluster
from tests.support.s3 import S3Server
from test_pretrain_e2e import python_children, tiny_ptr

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "glassbox"
GLASSBOX = str(Path(sys.executable).parent / "glassbox")
OP_SECRET = "glassbox-operator-s3"


def token_kubeconfig(cluster: Cluster, sa: str, ns: str, path: Path) -> Path:
    """A kubeconfig whose only credential is a token of system:serviceaccount:ns:sa."""
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    token = cluster.kubectl("create", "token", sa, "-n", ns, "--duration", "2h").stdout.strip()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": sa, "namespace": ns}}],
    }))
    return path


class ChartOperator:
    """The operator as the chart configures it, minus the pod: SA token, chart config, bare env."""

    def __init__(self, cluster: Cluster, s3: S3Server, bucket: str, workdir: Path):
        self.cluster, self.s3, self.workdir = cluster, s3, workdir
        suffix = uuid.uuid4().hex[:6]
        self.op_ns, self.ns, self.release = f"gbsec-op-{suffix}", f"gbsec-{suffix}", f"sec-{suffix}"
        self.values = {
            "storage": {"endpoint": s3.host, "secure": s3.secure, "bucket": bucket, "prefix": "runs",
                        "region": s3.region, "operatorCredentialsSecret": OP_SECRET},
            "security": {"allowLocalBackend": True},
            # KWOK keeps Job pods running, so a run stays active while the test publishes for it.
            "defaults": {"podAnnotations": {"glassbox.dev/kwok-exit": "never"}},
            "peering": {"installCRDs": False},
        }
        self.state_dir = workdir / "local"
        self.log = workdir / "operator.log"
        self.proc: subprocess.Popen | None = None

    def install(self) -> None:
        for ns in (self.op_ns, self.ns):
            self.cluster.kubectl("create", "namespace", ns)
        values = self.workdir / "values.yaml"
        values.write_text(yaml.safe_dump(self.values))
        out = self.cluster.helm("template", self.release, str(CHART), "--namespace", self.op_ns, "--validate", "-f", str(values),
                                "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml",
                                "--show-only", "templates/configmap.yaml").stdout
        self.docs = [d for d in yaml.safe_load_all(out) if d]
        self.cluster.apply(self.docs)
        sa = next(d["metadata"]["name"] for d in self.docs if d["kind"] == "ServiceAccount")
        self.kubeconfig = token_kubeconfig(self.cluster, sa, self.op_ns, self.workdir / "sa-kubeconfig.yaml")
        cm = next(d for d in self.docs if d["kind"] == "ConfigMap")
        # The config as the pod would mount it, read back from the cluster; only the local
        # backend's state dir moves from the pod's /tmp to this test's folder.
        config = yaml.safe_load(self.cluster.get("configmap", cm["metadata"]["name"], self.op_ns)["data"]["config.yaml"])
        assert config["storage"]["operatorCredentialsSecret"] == OP_SECRET and config["operatorNamespace"] == self.op_ns
        config["localStateDir"] = str(self.state_dir)
        self.config = self.workdir / "config.yaml"
        self.config.write_text(yaml.safe_dump(config))

    def create_secret(self) -> None:
        self.cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": OP_SECRET, "namespace": self.op_ns},
                            "stringData": {"AWS_ACCESS_KEY_ID": self.s3.access_key, "AWS_SECRET_ACCESS_KEY": self.s3.secret_key}})

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir), "KUBECONFIG": str(self.kubeconfig),
               "GLASSBOX_STAGING_DIR": str(self.workdir)}
        assert not [k for k in env if k.startswith(("GLASSBOX_S3", "AWS_"))]
        return env

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [GLASSBOX, "operator", "--standalone", "--namespace", self.ns, "--config", str(self.config),
                 "--resync-seconds", "1", "--log-level", "info"],
                env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for pid_file in self.state_dir.glob("*/*/*/pid"):
            if not (pid_file.parent / "exit").exists():
                try:
                    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for d in self.docs:
            if "namespace" not in d["metadata"]:
                self.cluster.delete(d["kind"].lower(), d["metadata"]["name"])
        self.cluster.kubectl("delete", "namespace", self.ns, self.op_ns, "--wait=false", check=False)

    def diagnostics(self) -> str:
        out = ["--- operator log ---", self.log.read_text(errors="replace")[-3000:]]
        for log in sorted(self.state_dir.glob("*/*/*/log")):
            out += [f"--- {log.parent.name} ---", log.read_text(errors="replace")[-2000:]]
        return "\n".join(out)


@pytest.fixture(scope="module")
def chart_op(cluster: Cluster, s3: S3Server, tmp_path_factory) -> Iterator[ChartOperator]:
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    bucket = f"gb-sec-{uuid.uuid4().hex[:8]}"
    s3.client().make_bucket(bucket)
    op = ChartOperator(cluster, s3, bucket, tmp_path_factory.mktemp("chart-operator"))
    op.install()
    op.start()
    try:
        yield op
    finally:
        op.stop()


def status(cluster: Cluster, kind: str, name: str, ns: str) -> dict:
    return (cluster.get(kind, name, ns) or {}).get("status") or {}


def condition(st: dict, ctype: str) -> dict | None:
    return next((c for c in st.get("conditions", []) if c["type"] == ctype), None)


def publish_manifest(s3: S3Server, run_uri: str, step: int) -> None:
    """What a workload publishes: manifest.json listing one checkpoint (the test writes it itself)."""
    bucket, _, key = run_uri.removeprefix("s3://").partition("/")
    m = Manifest(checkpoints=[CheckpointEntry(step=step, tokens=step * 64, loss=2.5, path=f"checkpoints/{step:08d}")])
    body = json.dumps(m.to_json()).encode()
    s3.client().put_object(bucket, f"{key}/manifest.json", io.BytesIO(body), len(body))


def test_progress_and_from_run_read_with_the_chart_configured_secret(cluster, s3, chart_op):
    op, ns = chart_op, chart_op.ns
    src = tiny_ptr("src", ns)
    src["spec"]["resources"] = {"backend": "job", "workers": 1, "cpu": "1", "memory": "1Gi"}
    cluster.apply(src)
    run_uri = cluster.wait_for(lambda: status(cluster, "pretrainrun", "src", ns).get("artifacts", {}).get("runUri"),
                               timeout=60, what="runUri")
    assert run_uri.startswith(f"s3://{op.values['storage']['bucket']}/runs/{ns}/pretrainrun/src-")
    publish_manifest(s3, run_uri, 6)

    # No Secret yet: the operator has no way to read S3 and says which Secret it lacks.
    c = cluster.wait_for(lambda: (c := condition(status(cluster, "pretrainrun", "src", ns), "StoreReadable"))
                         and c["status"] == "False" and c, timeout=60, what="StoreReadable=False")
    assert c["reason"] == "ManifestUnreadable" and f"{op.op_ns}/{OP_SECRET}" in c["message"], c
    assert "progress" not in status(cluster, "pretrainrun", "src", ns) or \
        status(cluster, "pretrainrun", "src", ns)["progress"].get("step") is None

    op.create_secret()
    try:
        st = cluster.wait_for(lambda: (st := status(cluster, "pretrainrun", "src", ns)) and (st.get("progress") or {}).get("step") == 6 and st,
                              timeout=60, what="progress from the manifest")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{op.diagnostics()}") from None
    assert condition(st, "StoreReadable")["status"] == "True"
    assert st["progress"]["checkpoint"] == "step-6" and st["progress"]["latestCheckpoint"] == f"{run_uri}/checkpoints/00000006"

    child = yaml.safe_load((ROOT / "examples" / "finetune-tpu.yaml").read_text())
    child["metadata"] = {"name": "child", "namespace": ns}
    child["spec"]["model"] = {"fromRun": {"kind": "PretrainRun", "name": "src", "checkpoint": "latest"}}
    child["spec"]["resources"] = {"backend": "job", "workers": 1, "cpu": "1", "memory": "1Gi"}
    child["spec"].pop("storage", None)
    cluster.apply(child)
    lineage = cluster.wait_for(lambda: status(cluster, "shardedfinetune", "child", ns).get("lineage"), timeout=60,
                               what="fromRun resolved")
    assert lineage == {"source": "PretrainRun/src@latest", "uri": f"{run_uri}/checkpoints/00000006", "step": 6}
    cluster.wait_for(lambda: cluster.get("job", "child-a0", ns), timeout=30, what="child Job")


def _grep(text: str, s3: S3Server) -> list[str]:
    return [name for name, secret in (("access key", s3.access_key), ("secret key", s3.secret_key)) if secret in text]


# Long enough that the workload is still training when status first shows a checkpoint, even on a
# loaded machine where status lags the workload by seconds (with 12 steps the kill could land after the
# last publish, and the retry then found the run complete instead of resuming it).
RETRY_STEPS = 144  # the kill must land mid-run: 48 steps once finished before status showed a checkpoint (a less loaded moment beside the unit lane)


def test_credentials_never_in_spec_status_events_or_logs_after_a_failure_and_a_retry(cluster, s3, chart_op):
    op, ns, name = chart_op, chart_op.ns, "tiny-retry"
    if not cluster.get("secret", OP_SECRET, op.op_ns):
        op.create_secret()
    resource = tiny_ptr(name, ns)
    resource["spec"]["training"]["maxSteps"] = RETRY_STEPS
    resource["spec"]["checkpoint"]["everySteps"] = 12
    cluster.apply(resource)
    uid = cluster.wait_for(lambda: (cluster.get("pretrainrun", name, ns) or {}).get("metadata", {}).get("uid"), what="uid")

    def running_with_checkpoint():
        st = status(cluster, "pretrainrun", name, ns)
        if st.get("phase") == "Failed":
            raise AssertionError(st.get("message"))
        return st.get("phase") == "Running" and (st.get("progress") or {}).get("step") and st

    try:
        cluster.wait_for(running_with_checkpoint, timeout=120, interval=0.3, what="Running with a checkpoint")
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\n{op.diagnostics()}") from None
    first = next(op.state_dir.joinpath(ns, uid).glob("*-a0"))
    children = python_children(int((first / "pid").read_text()))
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)  # the failure: the operator retries from the latest checkpoint
    try:
        st = cluster.wait_for(lambda: (st := status(cluster, "pretrainrun", name, ns)).get("phase") == "Succeeded" and st,
                              timeout=600, interval=0.5, what="Succeeded after the retry")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{op.diagnostics()}") from None
    assert st["retries"] == 1 and st["progress"]["step"] == RETRY_STEPS
    second = (next(op.state_dir.joinpath(ns, uid).glob("*-a1")) / "log").read_text()
    assert "resuming from checkpoint step" in second

    # The four places (and the children), grepped for both halves of the test credentials.
    places = {
        "spec and status": cluster.kubectl("get", "pretrainruns,shardedfinetunes", "-n", ns, "-o", "yaml").stdout,
        "events": cluster.kubectl("get", "events", "-n", ns, "-o", "yaml").stdout,
        "children": cluster.kubectl("get", "jobs,configmaps,serviceaccounts", "-n", ns, "-o", "yaml").stdout,
        "operator log": op.log.read_text(errors="replace"),
    }
    for log in op.state_dir.glob(f"{ns}/*/*/log"):
        places[f"workload log {log.parent.name}"] = log.read_text(errors="replace")
    for spec_file in op.state_dir.glob(f"{ns}/*/*/resource.json"):
        places[f"workload spec {spec_file.parent.name}"] = spec_file.read_text()
    assert {"AttemptFailed", "Retrying"} <= set(places["events"].split()) | {
        e["reason"] for e in cluster.kubectl_json("get", "events", "-n", ns)["items"]}
    assert len([k for k in places if k.startswith("workload log")]) >= 2
    leaks = {where: found for where, text in places.items() if (found := _grep(text, s3))}
    assert leaks == {}, leaks
