"""`glassbox render FILE`: the children the operator would create, as YAML, with no cluster.

Resources not yet created have no uid: a placeholder stands in (ownerReferences, run paths). A
fromRun reference cannot be resolved without the cluster: it is shown as the reference itself.
Without --config a resource that names no store endpoint is rendered against a placeholder
endpoint (a GitOps preview should not need the cluster's config) and a note on stderr says so;
with --config render is as strict as the operator, which refuses it (NoArtifactStore). Likewise
without --config backend local is rendered (the tiny examples run that way on a laptop), while an
operator with the chart's defaults refuses it (LocalBackendDisabled), as render with --config does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from glassbox_api.podcontract import Env
from glassbox_api.resource import InvalidResource, Resource

from .config import ConfigError, OperatorConfig, load_config
from .context import Context
from .manifests import dump_all
from .render import RenderError, render
from .render.common import StoreTarget, store_target
from .runner import EXIT_INVALID, load_resources
from .status import plan_of

# A reserved top-level domain (RFC 2606): never resolves, and reads as what it is in the YAML.
PLACEHOLDER_ENDPOINT = "s3-endpoint.placeholder.invalid"


def with_placeholder_store(config: OperatorConfig) -> OperatorConfig:
    """The same config with the placeholder S3 endpoint; bucket, prefix and Secret stay as they are."""
    return config.model_copy(update={"storage": config.storage.model_copy(update={"endpoint": PLACEHOLDER_ENDPOINT})})


def _context(resource: Resource, config: OperatorConfig) -> Context:
    ctx = Context(resource=resource, config=config, plan=plan_of(resource, {}))
    fr = getattr(getattr(resource.spec, "model", None), "from_run", None)
    if fr is not None:
        ctx = Context(resource=resource, config=config, plan=ctx.plan,
                      model_uri=f"fromrun://{fr.kind}/{fr.name}@{fr.checkpoint}")
    return ctx


def render_text(path: Path, config: OperatorConfig,
                fallback: Optional[OperatorConfig] = None) -> tuple[str, dict[str, StoreTarget]]:
    """Every child of every resource in the file, as one multi-document YAML string, and the
    store each resource (Kind/name) got from `fallback` because neither it nor `config` names one."""
    out, placeheld = [], {}
    for resource in load_resources(path):
        try:
            out.extend(render(_context(resource, config)))
        except RenderError as err:
            if fallback is None or err.reason != "NoArtifactStore":
                raise
            ctx = _context(resource, fallback)
            out.extend(render(ctx))
            placeheld[f"{resource.info.kind}/{resource.name}"] = store_target(ctx)
    return dump_all(out), placeheld


def placeholder_note(path: Path, placeheld: dict[str, StoreTarget]) -> str:
    """What stderr says when placeholders stand in: which values, where the real ones come from."""
    lines = [f"note: no artifact store endpoint in the spec (spec.storage.endpoint) and no --config ({Env.CONFIG}), so these children"
             f" use the PLACEHOLDER endpoint {PLACEHOLDER_ENDPOINT} (env {Env.S3_ENDPOINT}):"]
    for name, t in placeheld.items():
        lines.append(f"  {name}: store {t.uri} at {t.endpoint}, credentials Secret {t.secret}")
    lines += [
        "  Bucket, prefix and Secret are the spec's where it names them, else the chart's defaults.",
        "  An operator whose storage.endpoint (chart values) is empty refuses these (condition NoArtifactStore).",
        "  To preview with the real store, pass the operator's config, e.g. the chart's:",
        "    kubectl get configmap -n <operator-namespace> -l app.kubernetes.io/name=glassbox \\",
        "      -o jsonpath='{.items[0].data.config\\.yaml}' > config.yaml",
        f"    glassbox render {path} --config config.yaml",
    ]
    return "\n".join(lines) + "\n"


def render_file(path: Path, config_path: Optional[str] = None) -> int:
    try:
        config = load_config(config_path)
        if not config_path:
            config = config.model_copy(update={"security": config.security.model_copy(update={"allow_local_backend": True})})
        text, placeheld = render_text(path, config, None if config_path else with_placeholder_store(config))
    except InvalidResource as err:
        print(str(err), file=sys.stderr)
    except (RenderError, ConfigError) as err:
        print(f"{path}: {getattr(err, 'reason', 'InvalidConfig')}: {err}", file=sys.stderr)
    else:
        print(text, end="")
        if placeheld:
            print(placeholder_note(path, placeheld), end="", file=sys.stderr)
        return 0
    return EXIT_INVALID
