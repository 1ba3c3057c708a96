"""Seed splits: by site, and the same held-out pages in every command."""

import json
from dataclasses import replace

from models.test_tagger import write_tagger
from typer.testing import CliRunner

from proxkit.cli import app
from proxkit.models.tagger import TaggerConfig
from proxkit.train.seed import Example
from proxkit.train.split import (
    HELD_OUT_FOLDS,
    held_out_split,
    sample_pages,
    sample_sources,
    sample_with_renderings,
    site_folds,
)


def pages(count: int) -> list[Example]:
    return [Example(f"set{i % 2}/{i}", f"site{i % 7}", "chunk", ["x"], [False]) for i in range(count)]


def test_site_folds_keep_a_site_together_and_sampling_is_fair():
    examples = [Example(f"{s}/{i}", f"{s}-site{i % 3}", "chunk", ["x"], [False]) for s in "ab" for i in range(9)]
    folds = site_folds(examples, 4)
    for site in {e.site for e in examples}:
        assert len({f for e, f in zip(examples, folds, strict=True) if e.site == site}) == 1
    sample = sample_pages([*examples, Example("c/0", "c", "chunk", ["x"], [False])], 7)
    assert len(sample) == 7 and any(e.source == "c/0" for e in sample)


def test_renderings_joining_a_draw_come_for_the_pages_drawn_and_leave_the_draw_as_it_was():
    drawn = [replace(e, rendering="html") for e in pages(30)]
    markdown = [replace(e, rendering="markdown") for e in reversed(pages(30))]
    alone = sample_pages(drawn, 10)
    sample = sample_with_renderings(drawn + markdown, 10, ["markdown"])
    assert sample[:10] == alone
    assert sorted(e.source for e in sample[10:]) == sorted(e.source for e in alone)
    assert {e.rendering for e in sample[10:]} == {"markdown"}
    assert sample_with_renderings(drawn + markdown, 10) == sample_pages(drawn + markdown, 10)
    assert sample_with_renderings(drawn + markdown, 0, ["markdown"]) == drawn + markdown  # no limit: all


def test_the_held_out_side_is_whole_sites_and_depends_only_on_the_examples():
    train, held_out = held_out_split(pages(40))
    assert len(train) + len(held_out) == 40 and held_out
    assert not {e.site for e in train} & {e.site for e in held_out}
    folds = site_folds(pages(40), HELD_OUT_FOLDS)
    assert {e.site for e in held_out} == {e.site for e, f in zip(pages(40), folds, strict=True) if not f}
    again = held_out_split(list(reversed(pages(40))))[1]
    assert sorted(e.source for e in again) == sorted(e.source for e in held_out)


def test_prox_evaluate_held_out_scores_only_held_out_pages(tmp_path, tiny_backbone):
    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32)
    directory = write_tagger(tmp_path / "tagger", config, -10.0, -10.0)
    data = tmp_path / "seed.jsonl"
    records = [
        {"source": e.source, "site": e.site, "stage": "chunk", "text": "Some words here.", "labels": [1], "gold": "x"}
        for e in pages(40)
    ]
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    args = ["evaluate", "chunk", "--model", str(directory), "--data", str(data)]
    held = CliRunner().invoke(app, [*args, "--held-out"])
    assert held.exit_code == 0, held.output
    assert json.loads(held.stdout)["model"]["pages"] == len(held_out_split(pages(40))[1])
    sampled = CliRunner().invoke(app, [*args, "--held-out", "--limit", "2"])
    assert json.loads(sampled.stdout)["model"]["pages"] == 2


def test_a_sample_of_the_examples_holds_out_the_same_sites_as_the_whole():
    examples = [Example(f"s/{i}", f"site{i % 37}.example", "chunk", ["x"], [False]) for i in range(400)]
    _, held_out = held_out_split(examples)
    sample = [example for index, example in enumerate(examples) if index % 37 % 2 == 0]  # half of the sites
    assert held_out_split(sample)[1] == [example for example in held_out if example in sample]
    assert 0 < len(held_out) < len(examples)


def test_pages_are_drawn_per_collection_with_all_their_renderings():
    examples = [
        Example(f"{name}/{page}", f"site{page}", "chunk", ["x"], [False], rendering=rendering, collection=name)
        for name in ("a", "b") for page in range(10) for rendering in ("resiliparse", "markdown")
    ]  # fmt: skip
    sample = sample_sources(examples, 3)
    for collection in ("a", "b"):
        drawn = [e for e in sample if e.collection == collection]
        assert len({e.source for e in drawn}) == 3
        assert all(
            {e.rendering for e in drawn if e.source == source} == {"resiliparse", "markdown"}
            for source in {e.source for e in drawn}
        )
    assert sample_sources(examples, 3) == sample and len(sample_sources(examples, 20)) == len(examples)


def test_prox_evaluate_scores_the_same_pages_in_each_rendering(tmp_path, tiny_backbone):
    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32)
    directory = write_tagger(tmp_path / "tagger", config, -10.0, -10.0)
    data = tmp_path / "seed.jsonl"
    records = [
        {"source": f"c/{page}", "site": f"s{page}", "stage": "chunk", "text": f"Some words on page {page}.",
         "labels": [1], "gold": "Some words", "rendering": rendering}
        for page in range(6) for rendering in ("resiliparse", "markdown")
    ]  # fmt: skip
    drawn = {e.source for e in sample_sources([Example(r["source"], r["site"], "chunk", ["x"]) for r in records], 2)}
    first = min(drawn)  # in Markdown only one page drawn, and every page not drawn: drawing after the filter differs
    records = [r for r in records if r["rendering"] != "markdown" or r["source"] == first or r["source"] not in drawn]
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    args = ["evaluate", "chunk", "--model", str(directory), "--data", str(data), "--by", "rendering"]
    result = CliRunner().invoke(app, [*args, "--pages-per-collection", "2"])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["groups"]
    assert (
        groups["rendering=resiliparse"]["model"]["pages"] == 2 and groups["rendering=markdown"]["model"]["pages"] == 1
    )
    one = CliRunner().invoke(app, [*args, "--pages-per-collection", "2", "--rendering", "markdown"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["groups"] == {"rendering=markdown": groups["rendering=markdown"]}  # the same page
    none = CliRunner().invoke(app, [*args, "--pages-per-collection", "2", "--rendering", "justext"])
    assert none.exit_code == 2 and "in justext (of those drawn)" in none.output
    limited = CliRunner().invoke(app, [*args, "--pages-per-collection", "2", "--limit", "3"])
    assert limited.exit_code == 2 and "not with --limit" in limited.output
