"""The datatrove rule baselines."""

import json

import pytest

from proxkit.baselines import rule_decision, rule_filters

ARTICLE = """The city council voted on Tuesday to build eleven kilometres of protected cycle lanes.
Supporters said the lanes would cut traffic and make short trips safer for children and older residents.
Shop owners on the high street asked for loading bays to be kept during the morning hours.
The council agreed to review deliveries after six months and to publish the numbers it collects.
Construction is planned to start in the summer and to finish before the end of next year.
A public meeting about the first section will be held in the library on the third of May.
Residents who cannot attend may send written comments to the transport office until the end of April.
The mayor thanked the volunteers who counted bicycles at twelve junctions over two busy weeks.
Critics argued that the money could have repaired the roads instead, and asked for an independent study.
The study, the council replied, would be commissioned in the autumn and shared with every household."""


def test_a_clean_article_passes_every_rule_set():
    assert rule_decision(ARTICLE, rule_filters()) == (True, None)


def test_a_menu_is_dropped_with_the_rule_that_dropped_it():
    keep, reason = rule_decision("Home | About | Contact\nLogin", rule_filters())
    assert not keep and reason.startswith("gopher:")
    keep, reason = rule_decision("Home | About | Contact\nLogin", rule_filters(["fineweb"]))
    assert not keep and reason.startswith("fineweb:")


def test_unknown_rule_sets_are_named():
    with pytest.raises(ValueError, match="dolma"):
        rule_filters(["gopher", "dolma"])


def _write_corpus(path):
    import json

    lines = [
        json.dumps({"id": "article", "text": ARTICLE + "\nShare this page"}),
        json.dumps({"id": "menu", "text": "Home | About | Contact\nLogin"}),
        "{not json",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prox_baseline_writes_the_refine_outputs_with_the_rule_that_dropped(tmp_path):
    from test_cli import run as invoke

    from proxkit.run import read_records

    corpus, out = _write_corpus(tmp_path / "in.jsonl"), tmp_path / "out"
    result = invoke("baseline", "all", str(corpus), "-o", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "3 documents: 1 kept, 1 dropped, 1 failed" in result.output
    (kept,) = read_records(out / "data")
    assert kept["id"] == "article" and kept["raw_content"].endswith("Share this page")
    assert kept["text"] == ARTICLE  # the C4 rules removed the line without terminal punctuation
    (dropped,) = read_records(out / "dropped")
    assert dropped["metadata"]["prox"]["drop_reason"].startswith("gopher:")
    (failed,) = read_records(out / "failed")
    assert "in.jsonl:3" in failed["metadata"]["prox"]["error"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["config"] == {"baseline": ["gopher", "c4", "fineweb"]}
    assert stats["words"]["out"] == len(ARTICLE.split())


def test_prox_baseline_runs_one_rule_set_and_names_unknown_ones(tmp_path):
    from test_cli import flat
    from test_cli import run as invoke

    corpus = _write_corpus(tmp_path / "in.jsonl")
    result = invoke("baseline", "fineweb", str(corpus), "-o", str(tmp_path / "out"), "--no-progress")
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["config"] == {"baseline": ["fineweb"]}
    assert set(stats["drop_reasons"]) == {"fineweb:line_punct_ratio"}
    result = invoke("baseline", "gopher,dolma", str(corpus), "-o", str(tmp_path / "other"))
    assert result.exit_code != 0 and "dolma" in flat(result.output)


def test_prox_baseline_reads_other_keys_stops_at_the_limit_and_writes_parquet(tmp_path):
    from test_cli import run as invoke

    from proxkit.run import read_records

    corpus = tmp_path / "in.jsonl"
    records = [{"url": f"u{i}", "content": ARTICLE} for i in range(3)]
    corpus.write_text("".join(json.dumps(record) + "\n" for record in records))
    out = tmp_path / "out"
    options = ["--text-key", "content", "--id-key", "url", "--limit", "2", "--output-format", "parquet"]
    result = invoke("baseline", "c4", str(corpus), "-o", str(out), "--no-progress", *options)
    assert result.exit_code == 0, result.output
    assert list((out / "data").glob("*.parquet"))
    kept = [(record["id"], record["text"]) for record in read_records(out / "data")]
    assert kept == [("u0", ARTICLE), ("u1", ARTICLE)]
