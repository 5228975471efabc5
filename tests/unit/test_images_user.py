"""The images run as the uid the pods are told to run as (issue 17): a workload pod with
runAsNonRoot and runAsUser 65532 starts only if its image's files belong to, and its USER is,
that uid; the operator pod likewise with the chart's securityContext."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from glassbox_operator.config import WorkloadPodSecurity

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "images").glob("*.Dockerfile"))


def final_user(dockerfile: Path) -> str:
    """The USER of the last stage (what the container runs as)."""
    last = dockerfile.read_text().split("\nFROM ")[-1]
    users = re.findall(r"^USER\s+(\S+)", last, flags=re.M)
    assert users, f"{dockerfile.name}: the final stage sets no USER (it would run as root)"
    return users[-1]


@pytest.mark.parametrize("dockerfile", [p for p in IMAGES if p.name != "operator.Dockerfile"], ids=lambda p: p.name)
def test_workload_images_run_as_the_pods_uid(dockerfile: Path) -> None:
    s = WorkloadPodSecurity()
    assert final_user(dockerfile) == f"{s.run_as_user}:{s.run_as_group}"
    assert re.search(rf"useradd --uid {s.run_as_user}\b", dockerfile.read_text()), "the uid needs a passwd entry (HOME)"


def test_operator_image_runs_as_the_charts_uid() -> None:
    values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
    sc = values["securityContext"]
    assert final_user(ROOT / "images/operator.Dockerfile") == f"{sc['runAsUser']}:{sc['runAsGroup']}"
