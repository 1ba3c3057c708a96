"""A real run's stats.json and every record's metadata.prox conform to `proxkit.records`, and the schema
check catches what departs from it."""

import json

import pytest
from test_refine import FAST, models, prox, write_jsonl

from proxkit.records import ProxRecord, Stats, conforms, read_stats
from proxkit.run import read_records


def test_a_real_runs_outputs_conform_to_the_schema(tiny_refiner, tmp_path):
    pages = [
        {"id": "a", "text": "Home | News\nThe council met on Tuesday and voted for the lanes.\n(c) 2024"},
        {"id": "empty", "text": ""},
        {"id": "bad", "body": "no text field"},
    ]
    path = write_jsonl(tmp_path / "in.jsonl", pages)
    out = tmp_path / "out"
    prox("refine", str(path), "-o", str(out), *models(tiny_refiner), *FAST)
    stats = json.loads((out / "stats.json").read_text())
    assert conforms(stats, Stats) == [] and read_stats(out / "stats.json") == stats
    assert stats["documents"]["in"] == 3 and stats["words"]["in"] > 0  # the names Totals sums are the ones read
    records = [r for place in ("data", "dropped", "failed") for r in read_records(out / place)]
    assert len(records) == 3
    for record in records:
        assert conforms(record["metadata"]["prox"], ProxRecord, record["id"]) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"status": "kept", "stats": {"words_before": "9"}}, ".stats.words_before: '9' is not int"),
        ({"status": "kept", "surprise": 1}, ".surprise: not in the schema"),
        ({"errors": [{"kind": "syntax", "line": 1, "message": "m"}]}, ".errors[0].stage: missing"),
        ({"doc_score": True}, ".doc_score: True is not float"),
        ({"chunk_stage": {"chunks": 1}}, ".chunk_stage.new_tokens: missing"),
    ],
)
def test_the_schema_check_names_what_departs(value, problem):
    assert problem in conforms(value, ProxRecord)


def test_read_stats_names_the_file_and_what_departs(tmp_path):
    from proxkit.errors import InputError

    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"documents": {"in": 1}}))
    with pytest.raises(InputError, match=r"stats.json: not the stats.json of a proxkit run \(stats.calls: missing"):
        read_stats(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"stats\.json: cannot read"):
        read_stats(path)
