"""The chart specs the UI and `glassbox report` draw, and the vendored chart library's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from glassbox_api.manifest import Manifest
from glassbox_ui.views import chart, training_charts

VENDOR = Path(__file__).parents[3] / "ui" / "glassbox_ui" / "static" / "vendor" / "uplot"


def test_chart_keeps_only_finite_points_sorted_by_x():
    c = chart("x", "x", {"a": [(3, 1.0), (1, float("nan")), (2, float("inf")), (0, 2.0), (4, None)], "b": []})
    assert c["series"] == [{"name": "a", "points": [[0, 2.0], [3, 1.0]]}]


def test_log_charts_drop_values_a_log_axis_cannot_show():
    c = chart("p", "perplexity", {"ppl": [(1, 0.0), (2, -1.0), (3, 12.5)]}, log=True)
    assert c["series"][0]["points"] == [[3, 12.5]] and c["log"] is True


def test_a_run_without_data_has_no_charts():
    assert training_charts(Manifest(), []) == []


def test_quantities_that_cannot_be_negative_are_marked_so():
    rows = [{"step": 1, "loss": 7.0, "lr": 0.001, "tokens_per_s": 23770.0},
            {"step": 2, "loss": 6.0, "lr": 0.002, "tokens_per_s": 20.0}]
    by_id = {c["id"]: c for c in training_charts(Manifest(), rows)}
    assert by_id["throughput"]["nonneg"] and by_id["lr"]["nonneg"] and not by_id["loss"]["nonneg"]


def test_vendored_uplot_matches_its_pinned_sha256():
    sums = dict(line.split()[::-1] for line in (VENDOR / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (VENDOR / "LICENSE").read_text()
    assert "1.6.32" in (VENDOR / "README.md").read_text()


def test_the_report_draws_a_metric_runs_checkpoint_curve():
    from glassbox_ui.report import chart_specs

    m = Manifest(kind="MetricEval", final={"curvePoints": [{"step": 10, "perplexity": 50.0}, {"step": 20, "perplexity": 40.0}]})
    assert [(c["id"], len(c["series"][0]["points"])) for c in chart_specs(m, [])] == [("curve-perplexity", 2)]


def test_the_report_needs_no_web_framework():
    # `glassbox report` runs where only the operator extra is installed.
    import subprocess
    import sys

    code = ("import sys, glassbox_ui.report; "
            "sys.exit(1 if {'starlette', 'uvicorn'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
