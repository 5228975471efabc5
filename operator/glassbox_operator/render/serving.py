"""Services (ScorerService, DialogBot after training): a KServe InferenceService with a custom
predictor container. The weights come from the store through KServe's storage initializer
(STORAGE_URI); S3 credentials reach it through a ServiceAccount naming the user's Secret."""

from __future__ import annotations

from typing import Any, Optional

from glassbox_api.constants import LABEL_ATTEMPT, LABEL_KIND, LABEL_NAME, LABEL_UID
from glassbox_api.podcontract import MODEL_DIR, SERVING_PORT, Env

from ..context import Context
from ..naming import child_name
from .common import (
    MISSING, ChildState, condition, container, is_true, labels, metadata, placement, pod_spec, store_target,
)

API_VERSION, KIND = "serving.kserve.io/v1beta1", "InferenceService"
PORT = SERVING_PORT
POD_LABELS = (LABEL_KIND, LABEL_NAME, LABEL_UID, LABEL_ATTEMPT)


def isvc_name(ctx: Context) -> str:
    return child_name(ctx.name, "", 40)


def sa_name(ctx: Context) -> str:
    return child_name(ctx.name, "serving", 63)


def replicas(ctx: Context) -> int:
    return ctx.home.replicas(ctx.spec)


def model_uri(ctx: Context) -> Optional[str]:
    return ctx.model_uri or getattr(ctx.spec.model, "uri", None)


def selector(ctx: Context) -> str:
    return f"serving.kserve.io/inferenceservice={isvc_name(ctx)}"


def render(ctx: Context) -> list[dict[str, Any]]:
    place = placement(ctx)
    target = store_target(ctx)
    out: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = [{"name": Env.MODEL_DIR, "value": MODEL_DIR}]
    uri = model_uri(ctx)
    if uri:
        env.append({"name": "STORAGE_URI", "value": uri})
    c = container(ctx, "kserve-container", place, extra_env=env, ports=[{"containerPort": PORT, "protocol": "TCP"}])
    # Ready once the model is (KServe's v1 model route answers 503 while the weights load); the
    # model server serves the model under the resource's name (glassbox_workloads.serving).
    c["readinessProbe"] = {"httpGet": {"path": f"/v1/models/{ctx.name}", "port": PORT},
                           "periodSeconds": 5, "failureThreshold": 3}
    predictor = pod_spec(ctx, [c], place, restart=None)
    n = replicas(ctx)
    predictor.update({"minReplicas": n, "maxReplicas": max(n, 1)})
    # KServe puts these on the predictor pods: the operator's pod watch selects on our uid label.
    predictor["labels"] = {k: v for k, v in labels(ctx, "serving").items() if k in POD_LABELS}
    if target.secret:
        out.append({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(ctx, sa_name(ctx), "serving"),
            "secrets": [{"name": target.secret}],
        })
        predictor["serviceAccountName"] = sa_name(ctx)
    out.append({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(ctx, isvc_name(ctx), "serving"),
        "spec": {"predictor": predictor},
    })
    return out


def observe(obj: dict[str, Any] | None) -> ChildState:
    if not obj:
        return MISSING
    st = obj.get("status") or {}
    url = st.get("url") or (st.get("address") or {}).get("url")
    if is_true(obj, "Ready"):
        return ChildState("Running", "Ready", ready=True, endpoint=url)
    c = condition(obj, "Ready") or {}
    return ChildState("Pending", c.get("reason") or "Deploying", c.get("message") or "waiting for the InferenceService", endpoint=url)
