"""Every JSON endpoint of `glassbox ui` and its error paths, over runs in the published formats."""

from __future__ import annotations

import json
import os
import time

import pytest
from starlette.testclient import TestClient

from glassbox_api.manifest import MANIFEST_JSON
from glassbox_api.store import LocalStore, S3Store
from glassbox_ui.app import create_app

from .conftest import add_checkpoint, harvest_run, metric_run, pretrain_run, start_run


@pytest.fixture
def client(store: LocalStore) -> TestClient:
    return TestClient(create_app(store))


def test_runs_lists_every_kind_with_state_and_progress(client, all_runs):
    rows = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(rows) == set(all_runs.values())
    assert rows[all_runs["pretrain"]]["kind"] == "PretrainRun"
    assert rows[all_runs["pretrain"]]["progress"]["label"] == "30/30 steps"
    assert rows[all_runs["metric"]]["progress"]["label"] == "6/6 examples"
    assert rows[all_runs["harvest"]]["progress"]["label"] == "2/2 relations"
    assert rows[all_runs["scorer"]]["state"] == "completed"


def test_runs_filter_by_kind_and_text(client, all_runs):
    assert [r["id"] for r in client.get("/api/runs?kind=kgharvest").json()["runs"]] == [all_runs["harvest"]]
    assert [r["name"] for r in client.get("/api/runs?q=cappy").json()["runs"]] == ["cappy-tiny"]


def test_run_detail_has_record_checkpoints_and_lineage_both_ways(client, all_runs):
    d = client.get(f"/api/runs/{all_runs['pretrain']}").json()
    assert [c["step"] for c in d["checkpoints"]] == [10, 20, 30]
    assert d["checkpoints"][1]["samplesStart"] == 80 and d["checkpoints"][1]["samplesEnd"] == 160
    assert d["facts"]["seeds"] == {"data": 42} and d["spec"]["model"]["architecture"] == "llama"
    assert d["lineage"]["to"] == [{"field": "spec.model.fromRun", "run": all_runs["metric"], "checkpoint": "each"}]
    m = client.get(f"/api/runs/{all_runs['metric']}").json()
    assert m["lineage"]["from"][0]["runs"] == [all_runs["pretrain"]]
    assert m["summary"]["results"] == {"consistency": 0.62, "rouge-l": 0.65}


def test_charts_have_one_point_per_step_and_per_checkpoint(client, all_runs):
    d = client.get(f"/api/runs/{all_runs['pretrain']}/charts").json()
    charts = {c["id"]: {s["name"]: len(s["points"]) for s in c["series"]} for c in d["charts"]}
    assert charts["loss"] == {"loss (per step)": 30, "loss (checkpoint mean)": 3}
    assert charts["lr"] == {"lr": 30} and charts["throughput"] == {"tokens/s": 30}
    assert charts["evals-perplexity"] == {"perplexity": 3}
    assert d["warnings"] == []
    curve = client.get(f"/api/runs/{all_runs['metric']}/charts").json()
    assert {c["id"]: len(c["series"][0]["points"]) for c in curve["charts"]} == {"curve-perplexity": 4}


def test_harvest_tables_relations_prompts_and_searchable_tuples(client, all_runs):
    base = f"/api/runs/{all_runs['harvest']}"
    assert [r["name"] for r in client.get(base).json()["relations"]] == ["capital_of", "born_in"]
    t = client.get(f"{base}/table/tuples").json()
    assert t["total"] == 10 and t["columns"] == ["relation", "entities", "score", "weight"]
    one = client.get(f"{base}/table/tuples?relation=born_in&q=city3").json()
    assert [(r["relation"], r["entities"]) for r in one["rows"]] == [("born_in", ["city3", "country3"])]
    p = client.get(f"{base}/table/prompts?relation=capital_of&sort=weight").json()
    assert [r["weight"] for r in p["rows"]] == [0.4, 0.6]


def test_scores_sort_both_ways_with_texts_beside_them(client, all_runs):
    base = f"/api/runs/{all_runs['metric']}/table/scores"
    up = client.get(f"{base}?sort=rouge-l").json()
    assert [r["id"] for r in up["rows"]][:2] == ["s6", "s5"]
    down = client.get(f"{base}?sort=rouge-l&desc=1").json()
    assert down["rows"][0] == {"id": "s1", "source": "document 1 about buses", "output": "summary 1",
                               "references": "reference 1a || reference 1b", "consistency": 0.5, "rouge-l": 0.9}
    assert down["note"] is None


def test_scores_without_readable_texts_say_why(client, store, tmp_path):
    prefix, _ = metric_run(store, tmp_path)
    (tmp_path / "summaries.jsonl").unlink()
    d = client.get(f"/api/runs/{prefix}/table/scores").json()
    assert d["total"] == 6 and "cannot be read here" in d["note"] and "spec.data.uri" in d["note"]


def test_scores_while_running_come_from_the_chunks(client, store, tmp_path):
    prefix, _ = metric_run(store, tmp_path, published=False)
    d = client.get(f"/api/runs/{prefix}/table/scores").json()
    assert [r["id"] for r in d["rows"]] == ["s1", "s2", "s3", "s4", "s5", "s6"]


def test_a_page_of_1000_tuples_out_of_100k_is_fast(client, store):
    prefix, _ = harvest_run(store, tuples_per_relation=50_000)
    t0 = time.perf_counter()
    first = client.get(f"/api/runs/{prefix}/table/tuples?offset=0&limit=1000")
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    later = client.get(f"/api/runs/{prefix}/table/tuples?offset=99000&limit=1000&q=city4")
    warm = time.perf_counter() - t0
    assert first.json()["total"] == 100_000 and len(first.json()["rows"]) == 1000
    assert later.json()["offset"] == 99000
    t0 = time.perf_counter()
    sorted_page = client.get(f"/api/runs/{prefix}/table/tuples?offset=5000&limit=1000&sort=score")
    by_score = time.perf_counter() - t0
    assert sorted_page.json()["rows"][0]["score"] <= sorted_page.json()["rows"][-1]["score"]
    print(f"1000 of 100,000 tuples: first page {cold:.3f} s (reads, verifies and parses both files once), "
          f"a searched page {warm:.3f} s, a page sorted by score {by_score:.3f} s, load {os.getloadavg()[0]:.1f}")
    assert warm < 1.0 and by_score < 1.0
    assert cold < 4.0  # one parse of two 50,000-line files, on 2 shared cores


@pytest.mark.parametrize("query, message", [
    ("limit=0", "limit must be between 1 and 5000"),
    ("offset=-1", "offset must be 0 or more"),
    ("offset=x", "offset must be an integer"),
    ("sort=nope", "no column 'nope' to sort by"),
])
def test_bad_page_parameters_are_400_with_a_message(client, all_runs, query, message):
    r = client.get(f"/api/runs/{all_runs['harvest']}/table/tuples?{query}")
    assert r.status_code == 400 and message in r.json()["error"]


def test_unknown_run_table_and_relation_are_404(client, all_runs):
    assert "neither run.json nor manifest.json" in client.get("/api/runs/default/pretrainrun/nope-1234").json()["error"]
    r = client.get(f"/api/runs/{all_runs['harvest']}/table/weights")
    assert r.status_code == 404 and "no table 'weights'" in r.json()["error"]
    r = client.get(f"/api/runs/{all_runs['harvest']}/table/prompts?relation=spouse")
    assert r.status_code == 404 and "no relation 'spouse' published (published: capital_of, born_in)" in r.json()["error"]
    assert "need ?relation" in client.get(f"/api/runs/{all_runs['harvest']}/table/prompts").json()["error"]


def test_manifest_listing_a_missing_file_is_a_message(client, store, all_runs):
    store.sub(all_runs["harvest"]).delete("relations/born_in/tuples.jsonl")
    r = client.get(f"/api/runs/{all_runs['harvest']}/table/tuples?relation=born_in")
    assert r.status_code == 404
    assert "the manifest lists relations/born_in/tuples.jsonl, but the store has no" in r.json()["error"]
    store.sub(all_runs["pretrain"]).delete("metrics/00000020.jsonl")
    d = client.get(f"/api/runs/{all_runs['pretrain']}/charts").json()
    assert any("metrics/00000020.jsonl" in w for w in d["warnings"])
    assert {c["id"] for c in d["charts"]} >= {"loss", "lr"}  # the other segments still draw


def test_a_file_that_does_not_match_its_digest_is_a_message(client, store, all_runs):
    store.sub(all_runs["metric"]).put_bytes("scores.jsonl", b'{"id": "forged"}\n')
    r = client.get(f"/api/runs/{all_runs['metric']}/table/scores")
    assert r.status_code == 502 and "does not match the sha256 the manifest lists" in r.json()["error"]


def test_half_written_run_record_without_manifest(client, store):
    prefix, _ = start_run(store, "PretrainRun", "starting", {"model": {}})
    row = next(r for r in client.get("/api/runs").json()["runs"] if r["id"] == prefix)
    assert row["state"] == "starting" and row["progress"]["label"] == "not started"
    d = client.get(f"/api/runs/{prefix}").json()
    assert d["manifest"]["present"] is False and d["checkpoints"] == []
    assert "no manifest yet" in client.get(f"/api/runs/{prefix}/table/tuples").json()["error"]


def test_a_broken_manifest_is_an_unreadable_row_and_a_502(client, store, all_runs):
    store.sub(all_runs["scorer"]).put_bytes(MANIFEST_JSON, b"{not json")
    row = next(r for r in client.get("/api/runs").json()["runs"] if r["id"] == all_runs["scorer"])
    assert row["state"] == "unreadable" and "is not a readable manifest" in row["error"]
    r = client.get(f"/api/runs/{all_runs['scorer']}")
    assert r.status_code == 502 and "is not a readable manifest" in r.json()["error"]


def test_an_unreachable_bucket_is_a_502_with_the_endpoint(monkeypatch):
    from glassbox_api.store import RetryPolicy, S3Settings

    settings = S3Settings.from_env({"GLASSBOX_S3_ENDPOINT": "http://127.0.0.1:9", "GLASSBOX_S3_ACCESS_KEY": "k",
                                    "GLASSBOX_S3_SECRET_KEY": "s"})
    s3 = S3Store("runs", "", settings=settings, retry=RetryPolicy(deadline=0.5, initial=0.05))
    r = TestClient(create_app(s3)).get("/api/runs")
    assert r.status_code == 502
    assert r.json()["error"].startswith("cannot list the store s3://runs")
    assert "Traceback" not in r.text


def test_a_new_checkpoint_changes_updated_and_appears(client, store):
    prefix, run, m = pretrain_run(store, checkpoints=2, state="running")
    before = client.get(f"/api/runs/{prefix}").json()
    add_checkpoint(run, m, 30)  # within the same second: `updated` may not change, the version does
    after = client.get(f"/api/runs/{prefix}").json()
    assert len(after["checkpoints"]) == 3 and after["version"] != before["version"]
    assert client.get(f"/api/runs/{prefix}/charts").json()["version"] == after["version"]


def test_run_ids_that_escape_the_store_are_refused(client):
    assert client.get("/api/runs/../x/y").status_code == 404
    r = client.get("/api/runs/%2E%2E/etc/passwd")
    assert r.status_code == 404 and "is not a run folder" in r.json()["error"]


def test_the_page_and_the_vendored_chart_library_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/vendor/uplot/uPlot.iife.min.js" in page.text
    assert client.get("/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    assert "GlassboxCharts" in client.get("/static/charts.js").text


def test_an_internal_error_is_a_message_not_a_trace(client, all_runs, monkeypatch):
    from glassbox_ui import views

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(views, "charts", boom)
    r = client.get(f"/api/runs/{all_runs['pretrain']}/charts")
    assert r.status_code == 500 and r.json() == {"error": "internal error (ZeroDivisionError): division by zero"}


def test_glassbox_ui_command_serves_the_store_on_a_free_port(store, all_runs):
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    exe = Path(sys.executable).with_name("glassbox")
    proc = subprocess.Popen([str(exe), "ui", "--store", str(store.root), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("glassbox ui: http://127.0.0.1:") and ":0 " not in line, line
        url = line.split()[2]
        with urllib.request.urlopen(f"{url}/api/runs", timeout=30) as r:
            assert len(json.loads(r.read())["runs"]) == 4
    finally:
        proc.terminate()
        assert proc.wait(20) in (0, -15)  # uvicorn shuts down, then re-raises SIGTERM


def test_glassbox_ui_refuses_a_store_it_cannot_open():
    from typer.testing import CliRunner

    from glassbox_operator.cli import app

    res = CliRunner().invoke(app, ["ui", "--store", "ftp://host/x"])
    assert res.exit_code == 2 and "unsupported store URI scheme 'ftp'" in res.output


def test_playground_errors_name_the_problem(client):
    r = client.post("/api/playground/rank", json={"endpoint": "file:///etc/passwd", "model": "m", "instruction": "i",
                                                  "candidates": ["a"]})
    assert r.status_code == 400 and "is not an http(s) URL" in r.json()["error"]
    r = client.post("/api/playground/rank", json={"endpoint": "http://127.0.0.1:9", "model": "m", "instruction": "i",
                                                  "candidates": ["a"]})
    assert r.status_code == 502 and r.json()["error"].startswith("cannot reach http://127.0.0.1:9/v1/models/m:rank")
    r = client.post("/api/playground/rank", json={"endpoint": "http://127.0.0.1:9", "model": "m", "instruction": "i",
                                                  "candidates": ["  "]})
    assert r.status_code == 400 and "at least one non-empty candidate" in r.json()["error"]
    r = client.post("/api/playground/chat", json={"endpoint": "http://u:p@127.0.0.1:9", "model": "m", "messages": []})
    assert r.status_code == 400 and "must not carry credentials" in r.json()["error"]
    r = client.post("/api/playground/chat", content=b"not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "the request body is not JSON"
    r = client.post("/api/playground/chat", json={"endpoint": "http://127.0.0.1:9", "model": "m", "messages": [{"role": "user"}]})
    assert r.status_code == 400 and "each needs a role and a text content" in r.json()["error"]


def test_chat_playground_forwards_and_keeps_the_disclaimer_apart(client):
    from .conftest import ChatStub

    with ChatStub() as chat:
        r = client.post("/api/playground/chat", json={"endpoint": chat.url, "model": "covid-tiny",
                                                      "messages": [{"role": "user", "content": "fever?"}]})
    d = r.json()
    assert r.status_code == 200 and d["url"] == f"{chat.url}/openai/v1/chat/completions"
    assert d["reply"] == "echo: fever?" and d["disclaimer"] == "Research system, not a doctor: see one for medical advice."


def test_a_running_curve_is_drawn_from_the_manifest_points(client, store, tmp_path):
    prefix, run = metric_run(store, tmp_path, published=False)
    m = run.read_json(MANIFEST_JSON)
    m["final"]["curvePoints"] = [{"step": 10, "checkpoint": "step-10", "perplexity": 420.0},
                                 {"step": 20, "checkpoint": "step-20", "perplexity": 380.0, "skipped": "no"}]
    run.write_json(MANIFEST_JSON, m)
    charts = client.get(f"/api/runs/{prefix}/charts").json()["charts"]
    assert [(c["id"], c["series"][0]["points"]) for c in charts] == [("curve-perplexity", [[10, 420.0], [20, 380.0]])]
    assert client.get(f"/api/runs/{prefix}/table/curve").json()["total"] == 2


def test_texts_of_a_json_array_without_ids_join_by_position(client, store, tmp_path):
    data = tmp_path / "items.json"
    data.write_text(json.dumps([{"out": "first", "src": "doc one"}, {"out": "second", "src": "doc two"}]))
    spec = {"data": {"uri": str(data), "format": "json"}, "fields": {"output": "out", "source": "src"}}
    prefix, run = start_run(store, "MetricEval", "positional", spec)
    from .conftest import put

    scores = put(run, "scores.jsonl", b'{"id": "item-2", "bleu-4": 3.0}\n{"id": "item-1", "bleu-4": 9.0}\n')
    run.write_json(MANIFEST_JSON, {"kind": "MetricEval", "name": "positional", "state": "completed",
                                   "final": {"examplesTotal": 2, "examplesScored": 2, "outputs": {"scores": scores}}})
    rows = client.get(f"/api/runs/{prefix}/table/scores?sort=bleu-4&desc=1").json()["rows"]
    assert [(r["id"], r["output"], r["source"]) for r in rows] == [("item-1", "first", "doc one"), ("item-2", "second", "doc two")]
