"""backend local: the workload as a subprocess on the operator's host (development, tests, the
embedded mode). Rendered as a LocalProcess description; localrunner.py starts and tracks it."""

from __future__ import annotations

from typing import Any

from glassbox_api.podcontract import Env, argv

from ..context import STAGE_SERVE, Context
from .common import labels, spec_document, stage_arg, store_target, workload_name

API_VERSION, KIND = "glassbox.dev/local", "LocalProcess"


def render(ctx: Context) -> list[dict[str, Any]]:
    t = store_target(ctx)
    env = {Env.STORE: t.uri, Env.RUN_ID: ctx.run_id}
    if t.endpoint:
        env.update({Env.S3_ENDPOINT: t.endpoint, Env.S3_SECURE: "true" if t.secure else "false",
                    Env.S3_REGION: t.region})
    return [{
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": workload_name(ctx), "namespace": ctx.namespace, "labels": labels(ctx, "workload")},
        "spec": {
            # "python" is the operator's own interpreter; the runner writes the document to the
            # spec file and fills in its path.
            # a model server takes a free port (several may run on one host) and says which in its
            # `serving: URL` line, which the runner reads for readiness and the endpoint
            "argv": [*argv(ctx.kind, "{spec}", stage_arg(ctx)), "--store", t.uri, "--run-id", ctx.run_id,
                     *(["--port", "0"] if ctx.plan.stage == STAGE_SERVE else [])],
            "env": env,
            "document": spec_document(ctx),
        },
    }]
