"""Loading a MetricEval's examples: the spec's field names, ids carried, input order kept, and every
bad input a BadInput that names the example's line and the field to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox_api.kinds.common import DatasetRef
from glassbox_api.kinds.metriceval import EvalFields
from glassbox_workloads.metriceval.examples import load
from glassbox_workloads.runtime.errors import BadInput

FIELDS = EvalFields(output="summary", source="document", references="refs")


def write(tmp_path: Path, rows: list, name: str = "ex.jsonl") -> DatasetRef:
    p = tmp_path / name
    if name.endswith(".jsonl"):
        p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        return DatasetRef(uri=str(p))
    p.write_text(json.dumps(rows))
    return DatasetRef(uri=str(p), format="json")


def good(i: int, **extra) -> dict:
    return {"id": f"e{i}", "summary": f"summary {i}", "document": f"document {i}", "refs": [f"ref {i}"], **extra}


def test_jsonl_examples_keep_input_order_ids_and_the_spec_field_names(tmp_path: Path) -> None:
    ex = load(write(tmp_path, [good(1), good(2), good(3)]), FIELDS, {"source", "references"})
    assert ex.ids == ["e1", "e2", "e3"]
    assert ex.outputs == ["summary 1", "summary 2", "summary 3"]
    assert ex.sources == ["document 1", "document 2", "document 3"] and ex.references == [["ref 1"], ["ref 2"], ["ref 3"]]
    assert ex.where[1] == "line 2 of ex.jsonl"


def test_json_array_and_examples_without_id_are_numbered_by_position(tmp_path: Path) -> None:
    rows = [{k: v for k, v in good(i).items() if k != "id"} for i in (1, 2)]
    ex = load(write(tmp_path, rows, "ex.json"), FIELDS, set())
    assert ex.ids == ["item-1", "item-2"] and ex.sources is None


def test_a_bare_reference_string_is_one_reference_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    ex = load(write(tmp_path, [good(1, refs="only one"), "", good(2)]), FIELDS, {"references"})
    assert ex.references == [["only one"], ["ref 2"]] and ex.where[1] == "line 3 of ex.jsonl"


def test_limit_draws_deterministically_and_keeps_input_order(tmp_path: Path) -> None:
    ref = write(tmp_path, [good(i) for i in range(20)])
    a = load(ref.model_copy(update={"limit": 5}), FIELDS, set())
    b = load(ref.model_copy(update={"limit": 5}), FIELDS, set())
    assert a.ids == b.ids and len(a) == 5
    assert [int(i[1:]) for i in a.ids] == sorted(int(i[1:]) for i in a.ids)


def test_human_scores_per_aspect_or_bare_number_none_where_missing(tmp_path: Path) -> None:
    rows = [good(1, human={"fluency": 4, "relevance": 3.5}), good(2), good(3, human={"fluency": 2})]
    ex = load(write(tmp_path, rows), FIELDS, set())
    assert ex.human == {"fluency": [4.0, None, 2.0], "relevance": [3.5, None, None]}
    ex = load(write(tmp_path, [good(1, human=5)]), FIELDS, set())
    assert ex.human == {"human": [5.0]}


@pytest.mark.parametrize("row, needs, words", [
    ({"id": "x", "document": "d", "refs": ["r"]}, set(), ["line 2 of ex.jsonl", "'summary'", "output"]),
    (good(2, summary="   "), set(), ["line 2 of ex.jsonl", "'summary'", "empty"]),
    (good(2, summary=7), set(), ["line 2 of ex.jsonl", "'summary'", "int"]),
    ({"id": "x", "summary": "s", "refs": ["r"]}, {"source"}, ["line 2 of ex.jsonl", "'document'", "source"]),
    (good(2, refs=[]), {"references"}, ["line 2 of ex.jsonl", "'refs'", "references"]),
    (good(2, refs=["ok", ""]), {"references"}, ["line 2 of ex.jsonl", "'refs'"]),
    ({"id": "x", "summary": "s"}, {"references"}, ["line 2 of ex.jsonl", "no field 'refs'"]),
    (good(2, human={"fluency": "good"}), set(), ["line 2 of ex.jsonl", "human", "not a number"]),
    ("[1, 2]", set(), ["line 2 of ex.jsonl", "list", "not a JSON object"]),
    ("{not json", set(), ["line 2 of ex.jsonl", "not JSON"]),
])
def test_bad_example_names_its_line_and_field(tmp_path: Path, row, needs: set, words: list[str]) -> None:
    with pytest.raises(BadInput) as err:
        load(write(tmp_path, [good(1), row]), FIELDS, needs)
    assert err.value.field == "spec.data"
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_missing_dataset_and_text_format_are_bad_input_naming_the_spec_field(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        load(DatasetRef(uri=str(tmp_path / "nope.jsonl")), FIELDS, set())
    assert err.value.field == "spec.data.uri"
    with pytest.raises(BadInput) as err:
        load(DatasetRef(uri=str(tmp_path), format="text"), FIELDS, set())
    assert err.value.field == "spec.data.format"
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(BadInput, match="holds no examples"):
        load(DatasetRef(uri=str(tmp_path / "empty.jsonl")), FIELDS, set())
