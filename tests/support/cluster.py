"""The real test control plane: start it (hack/cluster.sh), talk to it (kubectl, helm), stop it.

`start_cluster(workdir)` runs `hack/cluster.sh up` with its state in `workdir` (the script and the
fixtures share hack/cluster/{nodes,stages}.yaml). With GLASSBOX_TEST_USE_EXISTING_CLUSTER=1 and
KUBECONFIG set, `existing_cluster()` returns that cluster instead and nothing is built or started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support import bins, reaper

HACK = bins.HACK
CLUSTER_SCRIPT = HACK / "cluster.sh"
NODES_YAML = HACK / "cluster" / "nodes.yaml"
STAGES_YAML = HACK / "cluster" / "stages.yaml"
DEFAULT_NAME = "glassbox-test"
FIELD_MANAGER = "glassbox-test"

# Annotations the KWOK stages read (hack/cluster/stages.yaml says what each value does).
EXIT_ANNOTATION = "glassbox.dev/kwok-exit"
EXIT_DELAY_ANNOTATION = "glassbox.dev/kwok-exit-delay"

T = TypeVar("T")


class ClusterError(RuntimeError):
    """The cluster could not be started or reached; the message says why."""


class CommandError(subprocess.CalledProcessError):
    """A kubectl/helm call failed; str() includes its stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited {self.returncode}: {(self.stderr or '').strip()}"


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def node_pools() -> dict[str, list[str]]:
    """Pool name -> node names, as declared in hack/cluster/nodes.yaml."""
    pools: dict[str, list[str]] = {}
    for node in load_yaml_docs(NODES_YAML):
        pools.setdefault(node["metadata"]["labels"]["glassbox.dev/pool"], []).append(node["metadata"]["name"])
    return pools


def to_yaml(obj_or_yaml: str | dict[str, Any] | Iterable[dict[str, Any]]) -> str:
    """A manifest as text: YAML passes through, a dict or a list of dicts is dumped."""
    if isinstance(obj_or_yaml, str):
        return obj_or_yaml
    if isinstance(obj_or_yaml, dict):
        return json.dumps(obj_or_yaml)
    return yaml.safe_dump_all(list(obj_or_yaml), sort_keys=False)


def _run(cmd: list[str], *, env: dict[str, str], input: str | None, check: bool,
         timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, input=input, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc


@dataclass
class Cluster:
    """A reachable cluster: its kubeconfig and the kubectl/helm that talk to it."""

    kubeconfig: Path
    name: str = DEFAULT_NAME
    workdir: Path | None = None  # state dir of a cluster we started (None: not ours)
    kubectl_bin: str = "kubectl"
    helm_bin: str = "helm"
    path_entries: list[Path] = field(default_factory=list)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def managed(self) -> bool:
        """True when this session started the cluster (and stop() tears it down)."""
        return self.workdir is not None

    def env(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG and our binaries first on PATH (for subprocesses under test)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        if self.path_entries:
            env["PATH"] = os.pathsep.join([*map(str, self.path_entries), env.get("PATH", "")])
        return env

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises CommandError (with stderr) when check fails."""
        cmd = [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args]
        return _run(cmd, env=self.env(), input=input, check=check, timeout=timeout)

    def kubectl_json(self, *args: str, timeout: float = 120) -> Any:
        """kubectl ... -o json, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """One object as a dict, or None when it does not exist."""
        ns = ["-n", namespace] if namespace else []
        proc = self.kubectl("get", kind, name, *ns, "-o", "json", "--ignore-not-found", check=True)
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def apply(self, obj_or_yaml: str | dict[str, Any] | Iterable[dict[str, Any]], *,
              server_side: bool = True, namespace: str | None = None, force_conflicts: bool = False,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        """kubectl apply -f - (server-side under one field manager by default)."""
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", f"--field-manager={FIELD_MANAGER}"]
            if force_conflicts:
                args.append("--force-conflicts")
        if namespace:
            args += ["-n", namespace]
        return self.kubectl(*args, input=to_yaml(obj_or_yaml), check=check)

    def create(self, obj_or_yaml: str | dict[str, Any] | Iterable[dict[str, Any]], *,
               namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """kubectl create -f - (keeps a Node's status; fails if the object exists)."""
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("create", "-f", "-", *ns, input=to_yaml(obj_or_yaml), check=check)

    def delete(self, kind: str, *names: str, namespace: str | None = None,
               wait: bool = False) -> subprocess.CompletedProcess[str]:
        """kubectl delete, ignoring objects that are already gone."""
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("delete", kind, *names, *ns, "--ignore-not-found", f"--wait={str(wait).lower()}")

    def wait_for(self, predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.5,
                 what: str = "") -> T:
        """Poll predicate until it returns something truthy, and return that.

        Exceptions inside predicate count as "not yet" (the API may be catching up); on timeout the
        last value or exception is in the TimeoutError message.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
                last = value
            except Exception as exc:  # noqa: BLE001 - reported on timeout
                last = exc
            if time.monotonic() >= deadline:
                label = what or getattr(predicate, "__name__", "condition")
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {label}; last: {last!r}")
            time.sleep(interval)

    def helm(self, *args: str, check: bool = True, timeout: float = 300,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster (its kubeconfig; helm state under the workdir if ours)."""
        env = self.env()
        if self.workdir is not None:
            # Keep helm's cache/config/data out of $HOME.
            for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                             ("HELM_DATA_HOME", "data")):
                env[var] = str(self.workdir / "helm" / sub)
        cmd = [self.helm_bin, "--kubeconfig", str(self.kubeconfig), *args]
        return _run(cmd, env=env, input=input, check=check, timeout=timeout)

    def logs_dir(self) -> Path | None:
        """Where kwokctl writes the control-plane component logs (ours only)."""
        if self.workdir is None:
            return None
        return self.workdir / "kwok" / "clusters" / self.name / "logs"

    def stop(self) -> None:
        """Tear down a cluster this session started; leave anyone else's alone."""
        if self.workdir is None:
            return
        proc = subprocess.run([str(CLUSTER_SCRIPT), "down"], env=_script_env(self.workdir, self.name),
                              capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise ClusterError(f"cluster.sh down failed: {proc.stderr[-4000:]}")
        reaper.cancel(self._watchdog)


def _script_vars(workdir: Path, name: str) -> dict[str, str]:
    # No S3 from the script: tests/support/s3.py runs its own (it must stop and restart it).
    return {"GLASSBOX_CLUSTER_DIR": str(workdir), "GLASSBOX_CLUSTER_NAME": name, "GLASSBOX_CLUSTER_S3": "0"}


def _script_env(workdir: Path, name: str) -> dict[str, str]:
    return {**os.environ, **_script_vars(workdir, name)}


def start_cluster(workdir: Path, name: str = DEFAULT_NAME, extra_env: dict[str, str] | None = None,
                  timeout: float = 600) -> Cluster:
    """Build or reuse the binaries and start a fresh cluster with its state under workdir.

    workdir is removed again by stop(); a watchdog stops the cluster if this process dies first.
    Use a directory of your own (not a pytest tmp_path: pytest prunes old ones while they may run).
    extra_env goes to hack/cluster.sh (GLASSBOX_REAL_NODE=1, GLASSBOX_ENGINES=1, GLASSBOX_CLUSTER_S3=1);
    its `down` finds a real node or engines from the state dir, so stop() needs none of it.
    """
    paths = bins.ensure_binaries()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "up.log"
    script_vars = {**_script_vars(workdir, name), **(extra_env or {})}
    down = ["env", *(f"{k}={v}" for k, v in script_vars.items()), str(CLUSTER_SCRIPT), "down"]
    watchdog = reaper.watch_owner(down, log=log)
    with log.open("w") as fh:
        try:
            proc = subprocess.run([str(CLUSTER_SCRIPT), "up"], env={**os.environ, **script_vars},
                                  stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
            failure = f"exit {proc.returncode}" if proc.returncode != 0 else ""
        except subprocess.TimeoutExpired:
            failure = f"timed out after {timeout:.0f}s"
    if failure:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        # Whatever did start must not outlive the failure.
        subprocess.run(down, capture_output=True, timeout=180, cwd=bins.REPO)
        reaper.cancel(watchdog)
        raise ClusterError(f"hack/cluster.sh up failed ({failure}); last lines of its log:\n{tail}")
    return Cluster(
        kubeconfig=workdir / "kwok" / "clusters" / name / "kubeconfig.yaml",
        name=name,
        workdir=workdir,
        kubectl_bin=str(paths["kubectl"]),
        helm_bin=str(paths["helm"]),
        path_entries=bins.bin_path_entries(),
        _watchdog=watchdog,
    )


def use_existing() -> bool:
    """True when the session must use the cluster in KUBECONFIG (GLASSBOX_TEST_USE_EXISTING_CLUSTER=1)."""
    return os.environ.get("GLASSBOX_TEST_USE_EXISTING_CLUSTER") == "1"


def existing_cluster() -> Cluster:
    """The cluster in $KUBECONFIG, with kubectl and helm from PATH; nothing is built."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        raise ClusterError("GLASSBOX_TEST_USE_EXISTING_CLUSTER=1 needs KUBECONFIG set")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ClusterError("GLASSBOX_TEST_USE_EXISTING_CLUSTER=1 needs kubectl on PATH")
    cluster = Cluster(kubeconfig=Path(kubeconfig.split(os.pathsep)[0]), name="existing",
                      kubectl_bin=kubectl, helm_bin=shutil.which("helm") or "helm")
    proc = cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=30)
    if proc.returncode != 0:
        raise ClusterError(f"cluster in KUBECONFIG={kubeconfig} is not reachable: {proc.stderr.strip()}")
    return cluster
