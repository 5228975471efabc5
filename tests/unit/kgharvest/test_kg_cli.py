"""`glassbox kg`: the tuples of a published harvest as a table or JSON lines, per relation."""

from __future__ import annotations

import json

from rich.console import Console

from glassbox_api.manifest import Manifest
from glassbox_api.store import LocalStore
from glassbox_operator import cli_artifacts
from glassbox_workloads.kgharvest.harvest import Harvest, WeightedPrompt
from glassbox_workloads.kgharvest.publish import complete, publish_relation, write_manifest

NAMES = ["capital_of", "lives_in"]


def _run(tmp_path, names=NAMES, publish=NAMES):
    store = LocalStore(tmp_path / "run")
    base = Manifest(kind="KGHarvest", name="kg", namespace="default", uid="u")
    for n in publish:
        tuples = [((f"{n}-a{i}", f"b{i}"), -1.0 - i, 0.5 / (i + 1)) for i in range(5)]
        publish_relation(store, Harvest(n, [WeightedPrompt("<ENT0> is <ENT1> .", 1.0, -1, -2)], tuples))
        write_manifest(store, base, names)
    complete(store, base, names)
    return store


def _out(fn, **kw):
    con = Console(width=200, record=True)
    rc = fn(console=con, **kw)
    return rc, con.export_text()


def test_kg_prints_every_relation_best_first(tmp_path):
    store = _run(tmp_path)
    rc, text = _out(cli_artifacts.kg, run_or_uri=str(store.root))
    assert rc == 0
    assert "capital_of-a0 | b0" in text and "lives_in-a4 | b4" in text
    assert text.index("capital_of-a0") < text.index("capital_of-a1")
    assert "relations 2/2  tuples 10" in text


def test_kg_top_and_relation_filter_json(tmp_path, capsys):
    store = _run(tmp_path)
    assert cli_artifacts.kg(str(store.root), relation="lives_in", top=2, as_json=True) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["entities"] for r in rows] == [["lives_in-a0", "b0"], ["lives_in-a1", "b1"]]
    assert set(rows[0]) == {"relation", "entities", "score", "weight"}


def test_kg_top_applies_per_relation(tmp_path, capsys):
    store = _run(tmp_path)
    cli_artifacts.kg(str(store.root), top=1, as_json=True)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["relation"] for r in rows] == NAMES


def test_kg_of_an_unknown_relation_fails_naming_the_published_ones(tmp_path):
    rc, text = _out(cli_artifacts.kg, run_or_uri=str(_run(tmp_path).root), relation="nope")
    assert rc == 1 and "no relation 'nope'" in text and "capital_of" in text


def test_kg_shows_only_relations_the_manifest_lists(tmp_path):
    store = _run(tmp_path, publish=["capital_of"])
    assert not store.exists("kg.jsonl")  # incomplete: no kg.jsonl yet
    rc, text = _out(cli_artifacts.kg, run_or_uri=str(store.root))
    assert rc == 0 and "capital_of-a0" in text and "lives_in" not in text.split("relations 1/2")[0]


def test_kg_of_a_missing_run_fails(tmp_path):
    rc, text = _out(cli_artifacts.kg, run_or_uri=str(tmp_path / "nothing"), store=str(tmp_path))
    assert rc == 1


def test_kg_jsonl_names_each_relation_in_spec_order(tmp_path):
    store = _run(tmp_path)
    lines = [json.loads(x) for x in store.get_bytes("kg.jsonl").decode().splitlines()]
    assert [x["relation"] for x in lines] == ["capital_of"] * 5 + ["lives_in"] * 5
    m = json.loads(store.get_bytes("manifest.json"))
    assert m["state"] == "completed" and [r["name"] for r in m["relations"]] == NAMES
    assert all(f["sha256"] for r in m["relations"] for f in r["files"])
