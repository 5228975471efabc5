"""The images run as the uid the pods are told to run as (issue 17): a workload pod with
runAsNonRoot and runAsUser 65532 starts only if its image's files belong to, and its USER is,
that uid; the operator pod likewise with the chart's securityContext. And every image the chart's
defaults and the operator render has a Dockerfile in images/ to be built from (issue 16)."""

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
    chain = "".join(p.read_text() for p in from_chain(dockerfile))
    assert re.search(rf"useradd --uid {s.run_as_user}\b", chain), "the uid needs a passwd entry (HOME)"


def from_chain(dockerfile: Path) -> list[Path]:
    """The Dockerfile and those of the glassbox images it is built FROM (serving FROM torch FROM
    torch-deps; the default of the ARG its FROM names): a passwd entry made in a parent is in the child."""
    chain = [dockerfile]
    for name in re.findall(r"^ARG \w+_IMAGE=\S*/glassbox/([\w-]+):", dockerfile.read_text(), flags=re.M):
        chain += from_chain(ROOT / "images" / f"{name}.Dockerfile")
    return chain


def rendered_images() -> dict[str, str]:
    """Every image a default install runs: the chart's operator image and each workload image the
    operator renders (the family of every kind's batch stages, and serving for the services)."""
    from glassbox_operator.config import Images
    from glassbox_operator.kinds import HOMES

    values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
    images = values["defaults"]["images"]
    families = {h.family for h in HOMES.values()} | ({"serving"} if any(h.service for h in HOMES.values()) else set())
    assert families <= set(Images.model_fields), families
    out = {f: images[f] for f in sorted(families)}
    out["operator"] = values["image"]["repository"]
    return out


@pytest.mark.parametrize("family", sorted(rendered_images()))
def test_every_rendered_image_has_a_dockerfile_in_images(family: str) -> None:
    ref = rendered_images()[family]
    name = ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    assert name == family, f"{ref}: the image is named after its Dockerfile, images/{family}.Dockerfile"
    assert (ROOT / "images" / f"{family}.Dockerfile").is_file(), f"{ref} has no images/{family}.Dockerfile"


def test_no_dockerfile_without_a_rendered_image_but_the_dependency_images_they_are_built_from() -> None:
    """images/<x>-deps.Dockerfile: what <x> is built FROM (its dependencies), never rendered itself."""
    names = {p.name.removesuffix(".Dockerfile") for p in IMAGES}
    deps = {n for n in names if n.endswith("-deps")}
    assert names - deps == set(rendered_images())
    for d in deps:
        parent = d.removesuffix("-deps")
        assert ROOT / "images" / f"{d}.Dockerfile" in from_chain(ROOT / "images" / f"{parent}.Dockerfile")


@pytest.mark.parametrize("dockerfile", IMAGES, ids=lambda p: p.name)
def test_every_image_ends_as_uid_65532(dockerfile: Path) -> None:
    assert re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.M)[-1] == "65532:65532"


def test_operator_image_runs_as_the_charts_uid() -> None:
    values = yaml.safe_load((ROOT / "charts/glassbox/values.yaml").read_text())
    sc = values["securityContext"]
    assert final_user(ROOT / "images/operator.Dockerfile") == f"{sc['runAsUser']}:{sc['runAsGroup']}"
