"""examples/gitops/: experiments kept in git as a team would, synced by Flux or Argo CD. Here without
a cluster: the folder is complete and valid, both tools point at it, and the argocd-cm snippet embeds
the chart's health script byte for byte. tests/cluster/operator/test_gitops.py validates the same
files against the real Flux and Argo CD CRDs on the apiserver."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from glassbox_operator.cli import app
from tests.support.gitops import EXAMPLES, HEALTH_LUA

EXPERIMENTS = EXAMPLES / "experiments"


def load(path: Path) -> dict:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def experiment_files() -> list[Path]:
    return sorted(p for p in EXPERIMENTS.glob("*.yaml") if p.name != "kustomization.yaml")


def test_the_argocd_cm_snippet_embeds_the_charts_health_script_byte_for_byte():
    cm = load(EXAMPLES / "argocd" / "argocd-cm.yaml")
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    customizations = yaml.safe_load(cm["data"]["resource.customizations"])
    assert list(customizations) == ["glassbox.dev/*"], "one wildcard entry for the whole group"
    embedded = customizations["glassbox.dev/*"]["health.lua"]
    assert embedded.encode() == HEALTH_LUA.read_bytes(), (
        f"re-embed {HEALTH_LUA.relative_to(EXAMPLES.parents[1])} in argocd-cm.yaml (indented 8 spaces)")


def test_the_experiments_folder_lists_every_resource_and_each_validates():
    kz = load(EXPERIMENTS / "kustomization.yaml")
    assert kz["kind"] == "Kustomization" and kz["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    files = experiment_files()
    assert sorted(kz["resources"]) == [p.name for p in files]
    assert all(load(p)["apiVersion"] == "glassbox.dev/v1alpha1" for p in files)
    res = CliRunner().invoke(app, ["validate", *map(str, files)])
    assert res.exit_code == 0, res.output
    assert res.output.count("ok ") == len(files), res.output


def test_flux_and_argocd_sync_the_same_folder_into_the_same_namespace():
    source = load(EXAMPLES / "flux" / "gitrepository.yaml")
    flux = load(EXAMPLES / "flux" / "experiments.yaml")
    argo = load(EXAMPLES / "argocd" / "application.yaml")
    namespace = load(EXPERIMENTS / "kustomization.yaml")["namespace"]
    assert (source["apiVersion"], source["kind"]) == ("source.toolkit.fluxcd.io/v1", "GitRepository")
    assert (flux["apiVersion"], flux["kind"]) == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    assert (argo["apiVersion"], argo["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert flux["spec"]["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert flux["spec"]["wait"] is True, "Flux health-checks the resources with kstatus"
    assert Path(flux["spec"]["path"]).name == Path(argo["spec"]["source"]["path"]).name == EXPERIMENTS.name
    assert argo["spec"]["source"]["repoURL"] == source["spec"]["url"]
    assert flux["spec"]["targetNamespace"] == argo["spec"]["destination"]["namespace"] == namespace
