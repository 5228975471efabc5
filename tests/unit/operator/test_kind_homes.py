"""A home per kind: every kind has one, and the generic operator (reconcile, status, gitops
conditions, handlers, renderers, the local runner) never branches on a kind name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from glassbox_api.kinds import KINDS
from glassbox_operator import kinds
from glassbox_operator.kinds.base import STAGE_RUN, STAGE_SERVE, STAGE_TRAIN

from opkit import ctx, example, resource

PKG = Path(kinds.__file__).resolve().parents[1]
GENERIC = sorted(p for p in PKG.rglob("*.py") if "kinds" not in p.relative_to(PKG).parts
                 and p.name not in ("cli.py", "cli_artifacts.py", "preview.py", "runner.py"))
NAMES = {n for info in KINDS.values() for n in (info.kind, info.kind.lower(), info.plural, info.short)}


def _kind_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in NAMES]


def test_generic_operator_modules_name_no_kind():
    assert len(GENERIC) >= 12, GENERIC  # reconcile, status, gitops, handlers, render/*, ...
    found = [hit for p in GENERIC for hit in _kind_literals(p)]
    assert found == [], "kind-specific code belongs in glassbox_operator/kinds/<kind>.py"


def test_the_check_finds_a_kind_name():
    # The scanner itself works: the homes are full of kind names.
    assert _kind_literals(PKG / "kinds" / "dialogbot.py")


def test_every_kind_has_exactly_one_home():
    assert set(kinds.HOMES) == set(KINDS)
    for name, home in kinds.HOMES.items():
        assert home.kind == name and home.family in ("torch", "jax", "serving")
        assert home.service == KINDS[name].is_service


@pytest.mark.parametrize("file,stages", [
    ("pretrain-tiny.yaml", [STAGE_RUN]),
    ("finetune-tiny.yaml", [STAGE_RUN]),
    ("kgharvest-tiny.yaml", [STAGE_RUN]),
    ("metriceval-tiny.yaml", [STAGE_RUN]),
    ("scorer-tiny.yaml", [STAGE_TRAIN, STAGE_SERVE]),
    ("scorer-gpu.yaml", [STAGE_SERVE]),
    ("scorer-adapt-gpu.yaml", [STAGE_TRAIN, STAGE_SERVE]),
    ("dialogbot-tiny.yaml", [STAGE_TRAIN, STAGE_SERVE]),
])
def test_stages_of_each_kind(file, stages):
    res = resource(example(file))
    home = kinds.home(res.info.kind)
    trained = [{"type": "Trained", "status": "True", "reason": "TrainingSucceeded", "message": "", "lastTransitionTime": "x"}]
    seen = [home.first_stage(res, [])]
    if seen[0] == STAGE_TRAIN:
        seen.append(home.first_stage(res, trained))
    assert seen == stages
    for stage in stages:
        assert home.resources(res.spec, stage) is not None
        assert ctx(res).stage_resources is home.resources(res.spec, seen[0])


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="PretrainRun"):
        kinds.home("Nope")


def test_a_batch_kind_has_no_replicas():
    res = resource(example("pretrain-tiny.yaml"))
    with pytest.raises(TypeError, match="batch kind"):
        kinds.home("PretrainRun").replicas(res.spec)
    assert kinds.home("ScorerService").replicas(resource(example("scorer-tiny.yaml")).spec) >= 0
