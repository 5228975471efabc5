"""`glassbox render FILE`: the children the operator would create, as YAML, with no cluster.

Resources not yet created have no uid: a placeholder stands in (ownerReferences, run paths). A
fromRun reference cannot be resolved without the cluster: it is shown as the reference itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from glassbox_api.resource import InvalidResource

from .config import ConfigError, OperatorConfig, load_config
from .context import Context
from .manifests import dump_all
from .render import RenderError, render
from .runner import EXIT_INVALID, load_resources
from .status import plan_of


def render_text(path: Path, config: OperatorConfig) -> str:
    """Every child of every resource in the file, as one multi-document YAML string."""
    out = []
    for resource in load_resources(path):
        ctx = Context(resource=resource, config=config, plan=plan_of(resource, {}))
        fr = getattr(getattr(resource.spec, "model", None), "from_run", None)
        if fr is not None:
            ctx = Context(resource=resource, config=config, plan=ctx.plan,
                          model_uri=f"fromrun://{fr.kind}/{fr.name}@{fr.checkpoint}")
        out.extend(render(ctx))
    return dump_all(out)


def render_file(path: Path, config_path: Optional[str] = None) -> int:
    try:
        print(render_text(path, load_config(config_path)), end="")
        return 0
    except InvalidResource as err:
        print(str(err), file=sys.stderr)
    except (RenderError, ConfigError) as err:
        print(f"{path}: {getattr(err, 'reason', 'InvalidConfig')}: {err}", file=sys.stderr)
    return EXIT_INVALID
