"""A PretrainRun end to end with the operator: `kubectl apply` on the real control plane, the operator
(`glassbox operator --standalone`, a subprocess) runs the workload on its host (backend local), the
workload trains and publishes checkpoints to the real S3 server, and `kubectl get ptr` shows phase,
step, tokens, loss and the latest checkpoint, read from the run manifest by the operator.

Failures on the way:
- the workload process SIGKILLed mid-run: the operator retries, the next attempt resumes from the
  latest published checkpoint, and nothing published is lost (earlier manifest entries unchanged);
- the S3 server stopped for 30 s while a checkpoint is being published: the publisher retries, and
  the manifest never lists a checkpoint whose files are not all in the store with their sha256.

S3 credentials reach the operator (and, through it, the local workload) only through its environment;
the resource names no credentials, and none appear in what the operator writes.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import pytest
import yaml

from glassbox_api.manifest import CHECKSUMS_FILE, Manifest, checksums_text, read_manifest
from glassbox_api.store import NotFound, RetryPolicy, S3Settings, open_store
from tests.support.cluster import Cluster
from tests.support.s3 import S3Server

ROOT = Path(__file__).resolve().parents[2]
GLASSBOX = str(Path(sys.executable).parent / "glassbox")

MAX_STEPS = 12
EVERY = 3
STEPS = list(range(EVERY, MAX_STEPS + 1, EVERY))


def tiny_ptr(name: str, ns: str) -> dict:
    """Seconds of training: a 2-layer LLaMA, 32-token samples of the json package's sources."""
    return {
        "apiVersion": "glassbox.dev/v1alpha1",
        "kind": "PretrainRun",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {"architecture": "llama",
                      "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 2, "numHeads": 4,
                                 "maxPositionEmbeddings": 64}},
            "data": {"sources": [{"name": "json", "uri": "stdlib://json"}], "seqLength": 32, "chunks": 3,
                     "holdOut": 4, "tokenizer": {"train": {"vocabSize": 300}}},
            "training": {"microBatchSize": 4, "gradientAccumulationSteps": 1, "maxSteps": MAX_STEPS,
                         "warmupSteps": 3, "precision": "fp32", "deterministic": True},
            "checkpoint": {"everySteps": EVERY},
            "analysis": {"perplexity": False},
            "resources": {"backend": "local", "workers": 1},
            "failurePolicy": {"maxRetries": 2, "backoffSeconds": 1},
        },
    }


# ---- the operator under test ----------------------------------------------------------------------
class Operator:
    """`glassbox operator --standalone -A` with a config naming the S3 endpoint; credentials in its env."""

    def __init__(self, cluster: Cluster, s3: S3Server, bucket: str, workdir: Path):
        self.cluster, self.s3, self.workdir = cluster, s3, workdir
        self.state_dir = workdir / "local"
        self.config = workdir / "config.yaml"
        values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
        self.config.write_text(yaml.safe_dump({
            "apiVersion": "glassbox.dev/v1alpha1", "kind": "OperatorConfig",
            "nodePools": values["nodePools"],
            "storage": {**values["storage"], "endpoint": s3.host, "secure": s3.secure, "bucket": bucket,
                        "prefix": "runs", "region": s3.region},
            "defaults": values["defaults"],
            "security": {"allowLocalBackend": True},  # off by default (LocalBackendDisabled)
            "localStateDir": str(self.state_dir),
        }))
        self.proc: Optional[subprocess.Popen] = None
        self.log = workdir / "operator.log"

    def env(self) -> dict[str, str]:
        # Nothing S3 from the test's own environment (hack/cluster.sh env exports its server):
        # the endpoint comes from the config, the credentials from here, as a Deployment gets them.
        env = {k: v for k, v in self.cluster.env().items() if not k.startswith(("GLASSBOX_S3_", "AWS_"))}
        env.update(AWS_ACCESS_KEY_ID=self.s3.access_key, AWS_SECRET_ACCESS_KEY=self.s3.secret_key,
                   GLASSBOX_STAGING_DIR=str(self.workdir))
        return env

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [GLASSBOX, "operator", "--standalone", "-A", "--config", str(self.config),
                 "--resync-seconds", "1", "--log-level", "warning"],
                env=self.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # The local workloads run in sessions of their own: stop any still running.
        for pid_file in self.state_dir.glob("*/*/*/pid"):
            if not (pid_file.parent / "exit").exists():
                try:
                    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass

    def process_dir(self, ns: str, uid: str, attempt: int) -> Path:
        return next(self.state_dir.joinpath(ns, uid).glob(f"*-a{attempt}"))

    def diagnostics(self) -> str:
        out = ["--- operator log ---", self.log.read_text(errors="replace")[-3000:]]
        for log in sorted(self.state_dir.glob("*/*/*/log")):
            out += [f"--- {log.parent.name} ---", log.read_text(errors="replace")[-2000:]]
        return "\n".join(out)


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> str:
    name = f"gb-e2e-{uuid.uuid4().hex[:8]}"
    s3.client().make_bucket(name)
    return name


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        cluster.apply(f.read_text(), force_conflicts=True)
    ns = f"e2e-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, s3: S3Server, bucket: str, namespace: str, tmp_path_factory) -> Iterator[Operator]:
    op = Operator(cluster, s3, bucket, tmp_path_factory.mktemp("e2e-operator"))
    op.start()
    try:
        yield op
    finally:
        op.stop()


# ---- reading what was published -------------------------------------------------------------------
def run_store(s3: S3Server, run_uri: str, retry: Optional[RetryPolicy] = None):
    settings = S3Settings.from_env({**s3.env(), "GLASSBOX_S3_REGION": s3.region})
    return open_store(run_uri, settings=settings, retry=retry or RetryPolicy(deadline=20.0, initial=0.2, maximum=1.0))


def check_listed(store, manifest: Manifest) -> list[str]:
    """Every listed checkpoint complete in the store: each file present with its size and sha256, its
    SHA256SUMS matching the entry, its evals and metrics objects present. Problems, as text."""
    problems = []
    for entry in manifest.checkpoints:
        if not entry.files:
            problems.append(f"step {entry.step}: lists no files")
        for f in entry.files:
            try:
                data = store.get_bytes(f"{entry.path}/{f.path}")
            except NotFound:
                problems.append(f"step {entry.step}: {f.path} missing")
                continue
            if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
                problems.append(f"step {entry.step}: {f.path} differs from its entry")
        try:
            if store.get_bytes(f"{entry.path}/{CHECKSUMS_FILE}").decode() != checksums_text(entry.files):
                problems.append(f"step {entry.step}: {CHECKSUMS_FILE} does not match the entry")
        except NotFound:
            problems.append(f"step {entry.step}: {CHECKSUMS_FILE} missing")
        for extra in (entry.evals_path, entry.metrics_path):
            if extra and not store.exists(extra):
                problems.append(f"step {entry.step}: {extra} missing")
    return problems


class ManifestWatcher(threading.Thread):
    """Reads the manifest over and over while the run goes on and checks every checkpoint it lists
    against the store at that moment; remembers each listing and any incomplete checkpoint seen.
    Reads that fail for want of a server (S3 stopped) are skipped: they prove nothing either way."""

    def __init__(self, s3: S3Server, run_uri: str):
        super().__init__(daemon=True, name="manifest-watcher")
        self.store = run_store(s3, run_uri, retry=RetryPolicy(deadline=0.0))
        self.listings: list[list[int]] = []
        self.problems: list[str] = []
        self.entries: dict[int, dict] = {}
        self.last_error: Optional[BaseException] = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                m = read_manifest(self.store)
                if m is not None:
                    problems = check_listed(self.store, m)
                    self.listings.append([c.step for c in m.checkpoints])
                    self.problems += problems
                    for c in m.checkpoints:
                        if self.entries.setdefault(c.step, c.to_json()) != c.to_json():
                            self.problems.append(f"step {c.step}: its entry changed after it was listed")
            except Exception as exc:  # noqa: BLE001 - the server is away; try again
                self.last_error = exc
            self._halt.wait(0.2)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


# ---- cluster helpers ------------------------------------------------------------------------------
def status(cluster: Cluster, name: str, ns: str) -> dict:
    return (cluster.get("pretrainrun", name, ns) or {}).get("status") or {}


def get_ptr(cluster: Cluster, name: str, ns: str) -> dict[str, str]:
    """`kubectl get ptr NAME -o wide`, its one row as {column: value} (cut at the header's offsets:
    a cell can be empty)."""
    header, row = cluster.kubectl("get", "ptr", name, "-n", ns, "-o", "wide").stdout.splitlines()[:2]
    heads = list(re.finditer(r"\S+", header))
    return {m.group(): row[m.start():(heads[i + 1].start() if i + 1 < len(heads) else None)].strip()
            for i, m in enumerate(heads)}


def wait_phase(cluster: Cluster, op: Operator, name: str, ns: str, phase: str, timeout: float) -> dict:
    def reached() -> Optional[dict]:
        st = status(cluster, name, ns)
        if st.get("phase") == "Failed" and phase != "Failed":
            raise AssertionError(f"{name} failed: {st.get('message')}\n{op.diagnostics()}")
        return st if st.get("phase") == phase else None

    try:
        return cluster.wait_for(reached, timeout=timeout, interval=0.5, what=f"{name} {phase}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nstatus: {status(cluster, name, ns)}\n{op.diagnostics()}") from None


def python_children(pid: int) -> list[int]:
    """The processes whose parent is pid (the workload under the runner's `sh`)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def assert_no_credentials(cluster: Cluster, op: Operator, s3: S3Server, name: str, ns: str) -> None:
    obj = cluster.kubectl("get", "ptr", name, "-n", ns, "-o", "yaml").stdout
    assert s3.secret_key not in obj and s3.access_key not in obj
    for spec_file in op.state_dir.glob(f"{ns}/*/*/resource.json"):
        text = spec_file.read_text()
        assert s3.secret_key not in text and s3.access_key not in text


# ---- the tests ------------------------------------------------------------------------------------
def test_apply_trains_publishes_to_s3_and_survives_a_killed_workload(cluster, s3, bucket, operator, namespace):
    ns, name = namespace, "tiny-kill"
    t0 = time.monotonic()
    cluster.apply(tiny_ptr(name, ns))
    st = cluster.wait_for(lambda: status(cluster, name, ns).get("artifacts"), timeout=30, what="artifacts in status")
    run_uri = st["runUri"]
    assert run_uri.startswith(f"s3://{bucket}/runs/") and f"/runs/{ns}/pretrainrun/{name}-" in run_uri
    store = run_store(s3, run_uri)
    uid = cluster.get("pretrainrun", name, ns)["metadata"]["uid"]

    # `kubectl get ptr` while it runs: phase, step, tokens, loss and checkpoint from the manifest.
    def running_row() -> Optional[dict[str, str]]:
        row = get_ptr(cluster, name, ns)
        return row if row.get("PHASE") == "Running" and row.get("CHECKPOINT-URI", "").startswith(run_uri) else None

    try:
        row = cluster.wait_for(running_row, timeout=90, interval=0.3, what="Running with a checkpoint")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{operator.diagnostics()}") from None
    step = int(row["CHECKPOINT"].removeprefix("step-"))
    assert step in STEPS[:-1] and row["PROGRESS"] == f"{step}/{MAX_STEPS}", row
    assert row["CHECKPOINT-URI"] == f"{run_uri}/checkpoints/{step:08d}"

    # SIGKILL the workload (the python under the runner's sh) while it trains.
    first = operator.process_dir(ns, uid, 0)
    sh_pid = int((first / "pid").read_text())
    children = python_children(sh_pid)
    assert len(children) == 1, f"expected one workload process under sh {sh_pid}: {children}"
    os.kill(children[0], signal.SIGKILL)
    cluster.wait_for(lambda: (first / "exit").exists(), timeout=10, what="the killed workload's exit code")
    assert (first / "exit").read_text().strip() == "137"
    at_kill = read_manifest(store)
    assert at_kill is not None and at_kill.state == "running" and at_kill.latest.step < MAX_STEPS, \
        "the workload finished before it could be killed"
    kept = {c.step: c.to_json() for c in at_kill.checkpoints}

    st = wait_phase(cluster, operator, name, ns, "Succeeded", timeout=150)
    elapsed = time.monotonic() - t0

    # Retried once, resuming from the latest checkpoint published before the kill.
    assert st["retries"] == 1
    reasons = {e["reason"] for e in cluster.kubectl_json("get", "events", "-n", ns, "--field-selector",
                                                         f"involvedObject.name={name}")["items"]}
    assert {"AttemptFailed", "Retrying", "Succeeded"} <= reasons, reasons
    # Attempt 0 stayed stopped: never started again next to attempt 1 (two writers of one run).
    assert not (first / "pid").exists() and not (first / "exit").exists(), (first / "log").read_text()[-2000:]
    second_log = (operator.process_dir(ns, uid, 1) / "log").read_text()
    assert f"resuming from checkpoint step {at_kill.latest.step} " in second_log, second_log[-2000:]

    # Nothing published is lost: the entries listed at the kill are there unchanged; steps went on.
    final = read_manifest(store)
    assert final.state == "completed" and [c.step for c in final.checkpoints] == STEPS
    assert {c.step: c.to_json() for c in final.checkpoints if c.step in kept} == kept
    assert check_listed(store, final) == []
    tokens = [c.tokens for c in final.checkpoints]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)

    # The printer columns at the end: what the manifest says about the last checkpoint.
    row = get_ptr(cluster, name, ns)
    last = final.latest
    assert row["PHASE"] == "Succeeded" and row["PROGRESS"] == f"{MAX_STEPS}/{MAX_STEPS}" and MAX_STEPS == last.step
    assert int(row["TOKENS"]) == last.tokens
    assert row["LOSS"] == str(round(last.loss, 4)).rstrip("0").rstrip(".")  # rounded for a person
    assert row["CHECKPOINT"] == f"step-{last.step}" and row["CHECKPOINT-URI"] == f"{run_uri}/{last.path}"
    if "perplexity" in last.evals:
        assert float(row["PPL"]) == pytest.approx(last.evals["perplexity"], abs=0.01)
    prog = status(cluster, name, ns)["progress"]
    assert prog["checkpoints"] == len(STEPS) and prog["totalSteps"] == MAX_STEPS
    assert_no_credentials(cluster, operator, s3, name, ns)
    print(f"apply -> kill at step {at_kill.latest.step} -> resumed -> Succeeded in {elapsed:.1f}s")


def test_s3_stopped_during_a_publish_is_retried_and_never_lists_an_incomplete_checkpoint(
        cluster, s3, operator, namespace):
    ns, name = namespace, "tiny-outage"
    t0 = time.monotonic()
    cluster.apply(tiny_ptr(name, ns))
    run_uri = cluster.wait_for(lambda: status(cluster, name, ns).get("artifacts", {}).get("runUri"),
                               timeout=30, what="runUri in status")
    uid = cluster.get("pretrainrun", name, ns)["metadata"]["uid"]
    watcher = ManifestWatcher(s3, run_uri)
    watcher.start()
    try:
        # The first checkpoint committed: the next one is a few steps away, so the 30 s outage
        # starting now covers its publish (and the training behind it).
        try:
            cluster.wait_for(lambda: watcher.listings and watcher.listings[-1], timeout=90, interval=0.1,
                             what="the first checkpoint listed")
        except TimeoutError as exc:
            raise AssertionError(f"{exc} (last read error: {watcher.last_error!r})\n{operator.diagnostics()}") from None
        before = list(watcher.listings[-1])
        restarted = s3.stop_for(30)
        stopped_at = time.monotonic()
        assert before[-1] < MAX_STEPS, "the run finished before S3 could be stopped"

        # The operator cannot read the manifest meanwhile and says so; the workload runs on.
        cond = cluster.wait_for(
            lambda: next((c for c in status(cluster, name, ns).get("conditions", [])
                          if c["type"] == "StoreReadable" and c["status"] == "False"), None),
            timeout=25, interval=0.5, what="StoreReadable=False during the outage")
        assert cond["reason"] == "ManifestUnreadable"
        assert status(cluster, name, ns)["phase"] == "Running"
        restarted.join(timeout=60)
        assert s3.is_running() and time.monotonic() - stopped_at >= 30

        st = wait_phase(cluster, operator, name, ns, "Succeeded", timeout=150)
    finally:
        watcher.stop()
    elapsed = time.monotonic() - t0

    # The publisher retried through the outage, within one attempt of the workload.
    assert st["retries"] == 0
    log = (operator.process_dir(ns, uid, 0) / "log").read_text()
    retried = [ln for ln in log.splitlines() if re.search(r"failed \(.*\); retry \d+ in", ln)]
    assert retried, log[-3000:]
    assert any("checkpoints/" in ln or "manifest.json" in ln for ln in retried), retried[:5]

    # Never an incomplete checkpoint listed, at any reading; at the end all of them, all complete.
    assert watcher.problems == []
    assert len(watcher.listings) > 10
    store = run_store(s3, run_uri)
    final = read_manifest(store)
    assert final.state == "completed" and [c.step for c in final.checkpoints] == STEPS
    assert check_listed(store, final) == []
    for listing in watcher.listings:  # each listing a prefix of the final one: listed stays listed
        assert listing == STEPS[:len(listing)]

    cond = next(c for c in status(cluster, name, ns)["conditions"] if c["type"] == "StoreReadable")
    assert cond["status"] == "True"
    row = get_ptr(cluster, name, ns)
    assert row["PHASE"] == "Succeeded" and row["PROGRESS"] == f"{MAX_STEPS}/{MAX_STEPS}"
    assert row["CHECKPOINT-URI"] == f"{run_uri}/{final.latest.path}"
    print(f"apply -> S3 stopped 30 s after step {before[-1]} -> Succeeded in {elapsed:.1f}s")
