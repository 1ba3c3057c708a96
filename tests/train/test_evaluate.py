"""`prox evaluate`: a refiner scored through the real prompts and executor, beside the rule baselines."""

import json
from pathlib import Path

import pytest
from models.test_tagger import write_tagger
from servers import FlakyServer
from typer.testing import CliRunner

from proxkit.cli import app
from proxkit.models import resolve
from proxkit.models.tagger import TaggerConfig
from proxkit.program import Program, RemoveAllLines, RemoveLines, Stage, removed_lines
from proxkit.train.evaluate import (
    clean_text_documents,
    clean_text_pages,
    doc_scores,
    evaluate_chunk,
    evaluate_doc,
    full_page_documents,
    write_chunk_programs,
)
from proxkit.train.seed import Example, load_seed

PAGE = ["Home | About", "The council approved new cycle lanes on Tuesday.", "Copyright 2024"]


def test_removed_lines_follows_the_strict_executor():
    program = Program((RemoveLines(0, 0), RemoveLines(2, 9)))
    assert removed_lines(4, program) == [True, False, True, True]
    assert removed_lines(2, Program((RemoveAllLines(),))) == [True, True]


def tagger_dir(tmp_path, tiny_backbone, line_bias, doc_bias):
    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32)
    return write_tagger(tmp_path / "tagger", config, line_bias, doc_bias)


def test_a_refiner_that_removes_everything_scores_zero_kept_f1(tmp_path, tiny_backbone):
    spec = resolve(str(tagger_dir(tmp_path, tiny_backbone, 10.0, 10.0)), Stage.CHUNK)
    page = Example("p", "s", "chunk", PAGE, [True, False, True], gold=PAGE[1])
    report = evaluate_chunk(spec, [page])
    assert report["model"]["kept_line_f1"] == 0.0
    assert report["model"]["removed_line_f1"] == 0.8  # precision 2/3, recall 1
    assert report["model"]["content_word_f1"] == 0.0
    perfect = {"removed_line_f1": 1.0, "kept_line_f1": 1.0, "content_word_f1": 1.0, "pages": 1}
    assert report["c4_line_rule"] == perfect | {"words_kept": 0.6667}  # 8 of the page's 12 words
    assert report["model"]["words_kept"] == 0.0
    assert report["model"]["normalize"]["calls"] == 0


def test_clean_text_is_each_pages_gold_once_and_all_content(tmp_path, tiny_backbone):
    spec = resolve(str(tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0)), Stage.CHUNK)  # keeps every line
    gold = PAGE[1] + "\n\nIt opens next spring."
    pages = [
        Example("p", "s", "chunk", PAGE, [True, False, True], gold=gold, rendering=rendering)
        for rendering in ("resiliparse", "inscriptis")
    ]
    (clean,) = clean_text_pages(pages)
    assert clean.lines == [PAGE[1], "It opens next spring."] and clean.remove == [False, False]
    assert clean.rendering == "gold" and clean.source == "p"
    report = evaluate_chunk(spec, [clean])
    assert report["model"]["words_kept"] == 1.0 and report["model"]["content_word_f1"] == 1.0
    assert report["c4_line_rule"]["words_kept"] == 1.0


def test_doc_evaluation_compares_with_the_datatrove_rules(tmp_path, tiny_backbone):
    spec = resolve(str(tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0)), Stage.DOC)
    documents = [Example("a", "a", "doc", PAGE, drop=True), Example("b", "b", "doc", PAGE, drop=False)]
    report = evaluate_doc(spec, documents)
    assert report["model"]["accuracy"] == 0.5  # keeps both
    assert report["gopher_c4_fineweb_rules"]["accuracy"] == 0.5  # drops both: too short
    assert report["model"]["documents"] == 2
    assert report["model"]["kept_of_keeps"] == 1.0 and report["model"]["dropped_of_drops"] == 0.0
    assert report["gopher_c4_fineweb_rules"]["kept_of_keeps"] == 0.0
    right = {"accuracy": 1.0, "keep_f1": 1.0, "kept_of_keeps": 1.0, "dropped_of_drops": 1.0, "documents": 2}
    assert doc_scores([True, False], documents) == right
    assert doc_scores([True], documents[:1])["kept_of_keeps"] is None  # no keep label: no share


def test_prox_evaluate_prints_json(tmp_path, tiny_backbone):
    directory = tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0)
    data = tmp_path / "seed.jsonl"
    record = {
        "source": "p",
        "site": "s",
        "stage": "chunk",
        "text": "\n".join(PAGE),
        "labels": [0, 1, 0],
        "gold": PAGE[1],
    }
    data.write_text(json.dumps(record) + "\n" + json.dumps(record | {"source": "q"}) + "\n")
    result = CliRunner().invoke(app, ["evaluate", "chunk", "--model", str(directory), "--data", str(data)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["removed_line_f1"] == 0.0 and report["model"]["kept_line_f1"] == 0.5
    assert report["model"]["pages"] == 2
    command = ["evaluate", "chunk", "--model", str(directory), "--data", str(data), "--limit", "1"]
    assert json.loads(CliRunner().invoke(app, command).stdout)["model"]["pages"] == 1
    missing = CliRunner().invoke(app, ["evaluate", "doc", "--model", str(directory), "--data", str(data)])
    assert missing.exit_code == 2


def test_clean_text_documents_are_the_gold_texts_a_reader_keeps(tmp_path, tiny_backbone):
    long_gold = "\n".join([PAGE[1]] * 15)  # 120 words
    pages = [
        Example("long", "s", "chunk", PAGE, [True, False, True], gold=long_gold, language="de"),
        Example("short", "s", "chunk", PAGE, [True, False, True], gold=PAGE[1], language="en"),
    ]
    (document,) = clean_text_documents(pages)
    assert (document.source, document.stage, document.drop, document.remove) == ("long", "doc", False, None)
    assert document.lines == [PAGE[1]] * 15 and document.language == "de"
    data = tmp_path / "seed.jsonl"
    records = [
        {"source": p.source, "site": "s", "stage": "chunk", "text": "\n".join(PAGE), "labels": [0, 1, 0],
         "gold": p.gold, "language": p.language}
        for p in pages
    ]  # fmt: skip
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    directory = tagger_dir(tmp_path, tiny_backbone, -10.0, 10.0)  # drops every document
    command = ["evaluate", "doc", "--model", str(directory), "--data", str(data), "--clean-text", "--by", "language"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == {
        "accuracy": 0.0, "keep_f1": 0.0, "kept_of_keeps": 0.0, "dropped_of_drops": None, "documents": 1
    }  # fmt: skip
    assert list(report["groups"]) == ["language=de"]


def test_prox_evaluate_reports_per_collection_and_rendering(tmp_path, tiny_backbone):
    directory = tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0)  # keeps every line
    base = {"site": "s", "stage": "chunk", "gold": PAGE[1]}
    records = [
        base
        | {
            "source": "a",
            "collection": "wcxb",
            "rendering": "inscriptis",
            "text": "\n".join(PAGE),
            "labels": [0, 1, 0],
        },
        base
        | {
            "source": "b",
            "collection": "wcxb",
            "rendering": "html-text",
            "text": "\n\n".join(PAGE),
            "labels": [0, 0, 1, 1, 0],
        },
        base | {"source": "c", "collection": "big9-chaos", "text": PAGE[1], "labels": [1]},
    ]
    data = tmp_path / "seed.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    command = ["evaluate", "chunk", "--model", str(directory), "--data", str(data), "--by", "collection,rendering"]
    report = json.loads(CliRunner().invoke(app, command).stdout)
    groups = report["groups"]
    assert list(groups) == [
        "collection=big9-chaos,rendering=-",
        "collection=wcxb,rendering=html-text",
        "collection=wcxb,rendering=inscriptis",
    ]
    assert groups["collection=big9-chaos,rendering=-"]["model"]["kept_line_f1"] == 1.0
    assert groups["collection=wcxb,rendering=inscriptis"]["model"]["kept_line_f1"] == 0.5
    only = json.loads(CliRunner().invoke(app, [*command[:-2], "--collection", "big9-chaos"]).stdout)
    assert only["model"]["pages"] == 1 and "groups" not in only
    wrong = CliRunner().invoke(app, [*command[:-1], "site"])
    assert wrong.exit_code == 2 and "cannot group by site" in wrong.output


def test_prox_evaluate_scores_a_served_model(tmp_path, tiny_refiner):
    data = tmp_path / "seed.jsonl"
    labels = [("kept", 1), ("dropped", 0)]
    records = [{"source": s, "site": s, "stage": "doc", "text": "\n".join(PAGE), "label": k} for s, k in labels]
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    server = FlakyServer(failures=0)  # answers keep_doc() to every prompt
    try:
        args = ["evaluate", "doc", "--model", "served-doc", "--data", str(data), "--backend", "openai"]
        result = CliRunner().invoke(app, [*args, "--base-url", server.url, "--tokenizer", str(tiny_refiner)])
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == {
        "accuracy": 0.5, "keep_f1": 0.6667, "kept_of_keeps": 1.0, "dropped_of_drops": 0.0, "documents": 2
    }  # fmt: skip
    assert server.requests == 2
    no_endpoint = CliRunner().invoke(app, [*args, "--tokenizer", str(tiny_refiner)])
    assert no_endpoint.exit_code == 2 and "--base-url" in no_endpoint.output


def test_a_tagger_refines_pages_in_the_chunks_it_was_trained_on(tmp_path, tiny_backbone, monkeypatch):
    from dataclasses import replace

    from proxkit.prompts import CHUNK_TOKEN_BUDGET, MODEL_CONTEXT, WHOLE_PAGE
    from proxkit.stages import ChunkRefiner

    page = Example("p", "s", "chunk", PAGE * 20, [True, False, True] * 20, gold=PAGE[1])  # 60 lines
    from proxkit.models.tagger import TaggerWriter

    programs, prompts = {}, []
    generate = TaggerWriter.generate
    monkeypatch.setattr(
        TaggerWriter,
        "generate",
        lambda self, batch, *a, **k: prompts.append(len(batch)) or generate(self, batch, *a, **k),
    )
    for budget in (40, 0):
        directory = tagger_dir(tmp_path / str(budget), tiny_backbone, 10.0, 10.0)
        TaggerConfig.save(replace(TaggerConfig.load(directory), chunk_budget=budget), directory)
        spec = resolve(str(directory), Stage.CHUNK)
        limits = (40 if budget else WHOLE_PAGE, WHOLE_PAGE)  # a tagger reads any prompt length
        assert spec.chunk_limits == limits
        assert (ChunkRefiner(spec).budget, ChunkRefiner(spec).context) == limits
        programs[budget] = write_chunk_programs(spec, [page])[0]
    assert prompts[0] > 1 and prompts[1] == 1  # one program per 40-token chunk; one for the whole page
    assert programs[0] == programs[40] == "remove_lines(line_start=0, line_end=59)"  # every line, either way
    assert resolve("smollm2-135m", Stage.CHUNK).chunk_limits == (CHUNK_TOKEN_BUDGET, MODEL_CONTEXT)


def _refined(tmp_path, texts, doc_model: str, chunk_model: str) -> dict[str, dict]:
    records = [{"id": f"p{i}", "text": text} for i, text in enumerate(texts)]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "pages.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    out = tmp_path / "out"
    arguments = ["refine", str(path), "-o", str(out), "--doc-model", doc_model, "--chunk-model", chunk_model]
    result = CliRunner().invoke(app, [*arguments, "--no-progress", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    from proxkit.run import read_records

    return {r["id"]: r for place in ("data", "dropped") for r in read_records(out / place)}


def test_evaluate_writes_exactly_the_programs_refine_runs(tmp_path, tiny_refiner, tiny_backbone):
    from proxkit.train.evaluate import write_doc_programs

    texts = [
        "\n".join(["Home | About", *(f"Line {i} of page {p} says something plain." for i in range(6)), "(c) 2024"])
        for p in range(3)
    ] + ["Short.\n\nWith a blank line between paragraphs, as cleaned text has it."]
    tagger = str(tagger_dir(tmp_path, tiny_backbone, 0.0, -10.0))
    for doc_model, chunk_model in ((str(tiny_refiner), str(tiny_refiner)), (tagger, tagger)):
        refined = _refined(tmp_path / Path(doc_model).name, texts, doc_model, chunk_model)
        doc_programs = write_doc_programs(resolve(doc_model, Stage.DOC), texts)
        assert [refined[f"p{i}"]["metadata"]["doc_program"] for i in range(len(texts))] == doc_programs
        kept = [i for i in range(len(texts)) if refined[f"p{i}"]["metadata"]["chunk_program"] is not None]
        pages = [
            Example(f"p{i}", "s", "chunk", texts[i].split("\n"), [False] * len(texts[i].split("\n"))) for i in kept
        ]
        chunk_programs = write_chunk_programs(resolve(chunk_model, Stage.CHUNK), pages)
        assert [refined[f"p{i}"]["metadata"]["chunk_program"] for i in kept] == chunk_programs


def test_full_pages_judge_the_doc_stage_on_every_rendering_of_a_page(tmp_path, tiny_backbone):
    article = [PAGE[0], *[PAGE[1]] * 15, PAGE[2]]  # 120 content words between a menu and a footer
    labels = [0] + [1] * 15 + [0]
    records = [
        {"source": "long", "site": "s", "stage": "chunk", "text": "\n".join(article), "labels": labels,
         "rendering": rendering}
        for rendering in ("resiliparse", "inscriptis")
    ] + [
        {"source": "empty", "site": "s", "stage": "chunk", "text": "\n".join(PAGE), "labels": [0, 0, 0]},
        {"source": "short", "site": "s", "stage": "chunk", "text": "\n".join(PAGE), "labels": [0, 1, 0]},
    ]  # fmt: skip
    data = tmp_path / "seed.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    documents = full_page_documents(load_seed(data))
    assert [(d.source, d.rendering, d.drop) for d in documents] == [
        ("long", "resiliparse", False),
        ("long", "inscriptis", False),
        ("empty", None, True),
    ]  # the page of 8 content words is neither: no label
    assert documents[0].stage == "doc" and documents[0].remove is None and documents[0].lines == article
    directory = tagger_dir(tmp_path, tiny_backbone, -10.0, 10.0)  # drops every document
    command = ["evaluate", "doc", "--model", str(directory), "--data", str(data), "--full-pages", "--by", "rendering"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == {
        "accuracy": round(1 / 3, 4), "keep_f1": 0.0, "kept_of_keeps": 0.0, "dropped_of_drops": 1.0, "documents": 3
    }  # fmt: skip
    assert list(report["groups"]) == ["rendering=-", "rendering=inscriptis", "rendering=resiliparse"]
    chunk = CliRunner().invoke(
        app, ["evaluate", "chunk", "--model", str(directory), "--data", str(data), "--full-pages"]
    )
    assert chunk.exit_code == 2 and "--full-pages judges the doc stage" in chunk.output


@pytest.mark.parametrize("stage", ["chunk", "doc"])
def test_prox_evaluate_builds_the_backbone_on_the_device_and_dtype_asked(
    stage, tmp_path, tiny_backbone, built_backbones
):
    directory = tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0)
    data = tmp_path / "seed.jsonl"
    record = {"source": "p", "site": "s", "stage": stage, "text": "\n".join(PAGE), "labels": [0, 1, 0]}
    record |= {"label": 1} if stage == "doc" else {}
    data.write_text(json.dumps(record) + "\n")
    options = ["--device", "cpu", "--dtype", "bfloat16"]
    result = CliRunner().invoke(app, ["evaluate", stage, "--model", str(directory), "--data", str(data), *options])
    assert result.exit_code == 0, result.output
    assert built_backbones == [("cpu", "bfloat16")]
