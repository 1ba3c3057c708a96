"""The datatrove steps, with a scripted program writer that reads the real prompts it is given."""

import re

import pytest
from datatrove.data import Document

from proxkit.models import Generation, ModelSpec, ProgramWriter, resolve
from proxkit.outcome import Status, mark_failed, prox_metadata, status
from proxkit.program import Guards, Stage
from proxkit.run import read_records
from proxkit.stages import ChunkRefiner, DocRefiner, InputGuard, OutcomeWriter, ProgramExecutor, Totals

PAGE = "\n".join(
    [
        "Home | News | Contact",
        "The council approved eleven kilometres of protected cycle lanes on Tuesday evening.",
        "Supporters said the lanes would make short trips safer for children. Read more",
        "Shop owners asked for loading bays, and the council agreed to review deliveries later.",
        "Construction starts in the summer and should finish before the end of next year.",
        "Copyright 2024 City Herald",
    ]
)


class ScriptedWriter(ProgramWriter):
    """Decodes each prompt and writes the program a good refiner would: drop pages saying SPAM; remove
    lines with "Home |" or "Copyright"; normalize "Read more"."""

    def __init__(self, tokenizer, fail_on: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.fail_on = fail_on
        self.prompts: list[str] = []

    def generate(self, prompts, max_new_tokens, grammar=None):
        return [self._one(self.tokenizer.decode(list(ids))) for ids in prompts]

    def _one(self, prompt: str) -> Generation:
        self.prompts.append(prompt)
        if self.fail_on and self.fail_on in prompt:
            return Generation("", error="HTTP 500: overloaded")
        if "[doc]" not in prompt:
            return Generation(" drop_doc()" if "SPAM" in prompt else " keep_doc()", 4)
        calls = []
        for number, line in re.findall(r"\[(\d{3,})\](.*)", prompt):
            if "Home |" in line or "Copyright" in line:
                calls.append(f"remove_lines(line_start={int(number)}, line_end={int(number)})")
            if "Read more" in line:
                calls.append('normalize(source_str=" Read more", target_str="")')
        return Generation(" " + ("\n".join(calls) or "keep_chunk()"), 10)


@pytest.fixture
def writer(tiny_refiner, monkeypatch):
    spec = resolve(str(tiny_refiner), Stage.DOC)
    scripted = ScriptedWriter(spec.load_tokenizer())
    monkeypatch.setattr(ModelSpec, "load_writer", lambda self, tokenizer, rank=0: scripted)
    return scripted


def refine(documents, tiny_refiner, *, budget=1500, cache=None, guards=None):
    doc = resolve(str(tiny_refiner), Stage.DOC)
    chunk = resolve(str(tiny_refiner), Stage.CHUNK)
    steps = [
        InputGuard(max_chars=5000),
        DocRefiner(doc, batch_size=2, cache_folder=cache),
        ChunkRefiner(chunk, batch_size=2, budget=budget, cache_folder=cache),
        ProgramExecutor(guards=guards),
    ]
    data = iter(documents)
    for step in steps:
        data = step.run(data)
    return list(data)


def test_programs_are_written_merged_across_chunks_and_applied(writer, tiny_refiner):
    [document] = refine([Document(PAGE, "p1", metadata={"url": "u"})], tiny_refiner, budget=60)
    metadata = document.metadata
    assert prox_metadata(document)["chunk_stage"]["chunks"] > 1  # global line numbers across several chunks
    assert metadata["doc_program"] == "keep_doc()"
    assert "remove_lines(line_start=0, line_end=0)" in metadata["chunk_program"]
    assert "remove_lines(line_start=5, line_end=5)" in metadata["chunk_program"]
    assert document.text == "\n".join(PAGE.split("\n")[1:5]).replace(" Read more", "")
    assert metadata["raw_content"] == metadata["doc_content"] == PAGE
    assert status(document) is Status.KEPT
    assert prox_metadata(document)["stats"]["lines_removed"] == 2
    assert metadata["url"] == "u"


def test_dropped_documents_skip_the_chunk_stage(writer, tiny_refiner):
    documents = refine(
        [
            Document("SPAM SPAM " * 20, "spam"),
            Document(" \n ", "blank"),
            Document("x" * 6000, "long"),
            Document(PAGE, "ok"),
        ],
        tiny_refiner,
    )
    reasons = {d.id: prox_metadata(d).get("drop_reason") for d in documents}
    assert reasons == {"spam": "doc_program", "blank": "empty", "long": "too_long", "ok": None}
    chunk_prompts = [p for p in writer.prompts if "[doc]" in p]
    assert len(chunk_prompts) == 1 and "cycle lanes" in chunk_prompts[0]
    assert documents[0].text == "SPAM SPAM " * 20  # a dropped record keeps its text for inspection


def test_the_input_guard_holds_without_the_doc_stage(writer, tiny_refiner):
    chunk = resolve(str(tiny_refiner), Stage.CHUNK)
    documents = [Document("x " * 6000, "long"), Document("\t\n", "blank"), Document(PAGE, "ok")]
    documents.append(Document("\u200b\n\ufeff \u200e", "invisible"))  # zero-width characters only
    steps = [InputGuard(max_chars=5000), ChunkRefiner(chunk, batch_size=2), ProgramExecutor()]
    data = iter(documents)
    for step in steps:
        data = step.run(data)
    reasons = {d.id: prox_metadata(d).get("drop_reason") for d in data}
    assert reasons == {"long": "too_long", "blank": "empty", "ok": None, "invisible": "empty"}
    assert len(writer.prompts) == 1 and "cycle lanes" in writer.prompts[0]  # only the good page reached the model
    with pytest.raises(ValueError, match="max_chars"):
        InputGuard(max_chars=0)


def test_a_failed_generation_fails_its_document_and_the_rest_goes_on(writer, tiny_refiner):
    writer.fail_on = "Copyright 2024 City Herald"
    documents = refine([Document(PAGE, "bad"), Document(PAGE.replace("Copyright", "(c)"), "good")], tiny_refiner)
    bad, good = documents
    assert status(bad) is Status.FAILED
    assert prox_metadata(bad)["error"] == "doc stage: HTTP 500: overloaded"
    assert status(good) is Status.KEPT


def test_the_program_cache_spares_the_model_on_a_rerun(writer, tiny_refiner, tmp_path):
    first = refine([Document(PAGE, "a"), Document(PAGE + "\nMore.", "b")], tiny_refiner, cache=str(tmp_path))
    calls = len(writer.prompts)
    again = refine([Document(PAGE, "a"), Document(PAGE + "\nMore.", "b")], tiny_refiner, cache=str(tmp_path))
    assert len(writer.prompts) == calls  # nothing new was asked
    assert [(d.text, d.metadata) for d in again] == [(d.text, d.metadata) for d in first]
    changed = refine([Document(PAGE + "\nEdited.", "a")], tiny_refiner, cache=str(tmp_path))
    assert len(writer.prompts) > calls  # same id, other text: written anew
    assert changed[0].text.endswith("Edited.")


def test_a_scoring_writers_doc_score_is_recorded_cached_and_not_counted_as_a_stat(writer, tiny_refiner, tmp_path):
    scripted = writer._one

    def scoring(prompt: str) -> Generation:
        if "[doc]" in prompt:
            return scripted(prompt)
        spam = "SPAM" in prompt
        return Generation(" drop_doc()" if spam else " keep_doc()", 4, score=0.75 if spam else 0.125)

    writer._one = scoring
    documents = [Document(PAGE, "ok"), Document("SPAM SPAM " * 20, "spam")]
    first = refine(documents, tiny_refiner, cache=str(tmp_path))
    assert [prox_metadata(d)["doc_score"] for d in first] == [0.125, 0.75]
    assert "score" not in prox_metadata(first[0])["doc_stage"]
    again = refine(documents, tiny_refiner, cache=str(tmp_path))  # from the program cache
    assert [prox_metadata(d)["doc_score"] for d in again] == [0.125, 0.75]
    totals = Totals()
    for document in first:
        totals.add(document)
    assert not any("score" in name for name in totals.counts)


def earlier_output(document: Document) -> Document:
    """A record of an earlier run as the reader gives it back: same fields, proxkit's bookkeeping gone."""
    metadata = {key: value for key, value in document.metadata.items() if key != "prox"}
    return Document(document.text, document.id, metadata=metadata)


def test_the_executor_alone_re_executes_earlier_output_with_other_guards(writer, tiny_refiner):
    [document] = refine([Document(PAGE, "p")], tiny_refiner)
    [strict] = ProgramExecutor(guards=Guards(min_words=60)).run(iter([earlier_output(document)]))
    assert (status(strict), prox_metadata(strict)["drop_reason"]) == (Status.DROPPED, "too_few_words")
    assert strict.text == PAGE
    [relaxed] = ProgramExecutor().run(iter([earlier_output(strict)]))
    assert status(relaxed) is Status.KEPT and relaxed.text == document.text
    [nothing] = ProgramExecutor().run(iter([Document(PAGE, "no-programs")]))
    assert status(nothing) is Status.FAILED and "run a model stage" in prox_metadata(nothing)["error"]


def test_a_model_run_replaces_programs_that_came_with_the_input(writer, tiny_refiner):
    stale = {"doc_program": "drop_doc()", "chunk_program": "remove_lines(0, 5)", "raw_content": "other text"}
    [document] = refine([Document(PAGE, "p", metadata=dict(stale))], tiny_refiner)
    assert document.metadata["doc_program"] == "keep_doc()"
    assert document.metadata["raw_content"] == PAGE
    assert status(document) is Status.KEPT
    [empty] = refine([Document("", "e", metadata=dict(stale))], tiny_refiner)
    assert (status(empty), prox_metadata(empty)["drop_reason"]) == (Status.DROPPED, "empty")  # not re-executed


def test_the_outcome_writer_routes_every_document_and_counts(writer, tiny_refiner, tmp_path):
    failed = mark_failed(Document("{broken", "in.jsonl:3"), "in.jsonl:3: invalid JSON")  # as the reader marks it
    documents = refine([Document(PAGE, "kept"), Document("SPAM " * 30, "spam"), failed], tiny_refiner)
    list(OutcomeWriter(str(tmp_path), progress=False).run(iter(documents)))
    kept, dropped, failures = (read_records(tmp_path / place) for place in ("data", "dropped", "failed"))
    assert [r["id"] for r in kept] == ["kept"]
    assert list(kept[0]) == ["id", "text", "raw_content", "doc_content", "metadata"]
    assert kept[0]["metadata"]["chunk_program"]
    assert [(r["id"], r["metadata"]["prox"]["drop_reason"]) for r in dropped] == [("spam", "doc_program")]
    assert [(r["id"], r["metadata"]["prox"]["error"]) for r in failures] == [("in.jsonl:3", "in.jsonl:3: invalid JSON")]
    totals = (tmp_path / "logs" / "prox" / "00000.json").read_text()
    assert '"documents_in": 3' in totals and '"remove_lines": 2' in totals


def test_the_program_cache_survives_a_cut_line_and_any_character(tmp_path):
    from proxkit.stages import ProgramCache

    cache = ProgramCache(tmp_path, 0)
    cache.put([{"key": "a", "program": 'normalize(source_str="\u2028\x85")'}])
    cache.close()
    with (tmp_path / "00000.jsonl").open("a") as file:
        file.write('{"key": "b", "progr')  # a crash in the middle of a line
    again = ProgramCache(tmp_path, 0)
    again.put([{"key": "c", "program": "keep_chunk()"}])
    again.close()
    final = ProgramCache(tmp_path, 0)
    assert sorted(final.entries) == ["a", "c"]
    assert final.get("a")["program"] == 'normalize(source_str="\u2028\x85")'


def test_the_program_cache_holds_only_what_is_still_to_be_reused(tmp_path):
    from proxkit.stages import ProgramCache

    cache = ProgramCache(tmp_path, 0)
    cache.put([{"key": str(i), "program": "keep_chunk()"} for i in range(100)])
    assert cache.entries == {}  # this run's programs are on disk, not in memory
    cache.close()
    again = ProgramCache(tmp_path, 0)
    assert len(again.entries) == 100
    assert again.get("7")["program"] == "keep_chunk()" and again.get("7") is None  # handed out once
    assert len(again.entries) == 99


def test_a_tagger_threshold_keys_the_program_cache():
    plain = ModelSpec("m", Stage.CHUNK, "/models/m", options={"device": "cpu"})
    lenient = ModelSpec("m", Stage.CHUNK, "/models/m", options={"device": "cpu", "line_threshold": 0.95})
    assert ChunkRefiner(lenient).settings() == ChunkRefiner(plain).settings() | {"line_threshold": 0.95}
    assert "line_threshold" not in ChunkRefiner(plain).settings()  # caches of earlier runs stay valid


def test_a_taggers_config_and_weights_key_the_program_cache(tmp_path, tiny_backbone):
    from models.test_tagger import write_tagger

    from proxkit.models.tagger import TaggerConfig

    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32)
    directory = write_tagger(tmp_path / "tagger", config, -10.0, -10.0)
    spec = ModelSpec("t", Stage.DOC, str(directory), options={"device": "cpu"})
    before = DocRefiner(spec).settings()
    assert len(before["tagger"]) == 16
    TaggerConfig(**{**config.__dict__, "languages": ("en",)}).save(directory)
    after_config = DocRefiner(spec).settings()
    write_tagger(directory, config, 10.0, -10.0)  # other weights, the first config
    after_weights = DocRefiner(spec).settings()
    assert len({before["tagger"], after_config["tagger"], after_weights["tagger"]}) == 3
    assert "tagger" not in DocRefiner(ModelSpec("m", Stage.DOC, "/models/m", options={"device": "cpu"})).settings()


def test_the_layout_rule_keys_a_taggers_program_cache(tmp_path, tiny_backbone, monkeypatch):
    from models.test_tagger import write_tagger

    from proxkit import layout
    from proxkit.models.tagger import TaggerConfig

    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32)
    spec = ModelSpec("t", Stage.CHUNK, str(write_tagger(tmp_path / "tagger", config, -10.0, -10.0)))
    before = ChunkRefiner(spec).settings()
    monkeypatch.setattr(layout, "READER_VERSION", layout.READER_VERSION + 1)
    assert ChunkRefiner(spec).settings() == before | {"layout": layout.READER_VERSION}
    assert "layout" not in ChunkRefiner(ModelSpec("m", Stage.CHUNK, "/models/m")).settings()  # reads raw lines


def test_the_compute_dtype_keys_the_program_cache(monkeypatch):
    from proxkit.models import writer

    spec = ModelSpec("m", Stage.CHUNK, "/models/m", options={"device": "cpu", "dtype": "auto"})
    monkeypatch.setattr(writer, "cpu_bfloat16_pays", lambda: True)
    on_bf16_machine = ChunkRefiner(spec).settings()
    monkeypatch.setattr(writer, "cpu_bfloat16_pays", lambda: False)
    assert on_bf16_machine["dtype"] == "bfloat16" and ChunkRefiner(spec).settings()["dtype"] == "float32"
    remote = ModelSpec("m", Stage.CHUNK, "m", backend="openai", options={"base_url": "http://x"})
    assert ChunkRefiner(remote).settings()["dtype"] is None
