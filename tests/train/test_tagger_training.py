"""Training the line tagger on seed examples, with a tiny random backbone."""

import functools
import json
import os
import random
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from proxkit.cli import app
from proxkit.models.doc_statistics import DOCUMENT_STATISTICS
from proxkit.models.tagger import SURFACE_FEATURES, Backbone, DocProbe, TaggerConfig, TaggerHeads, TaggerWriter
from proxkit.models.tokenizers import load_tokenizer
from proxkit.program import Program
from proxkit.prompts import chunk_document, chunk_prompt_ids, doc_prompt_ids, line_cost
from proxkit.train import tagger
from proxkit.train.evaluate import clean_text_pages
from proxkit.train.seed import Example, load_seed

NAV = ["Home | About | Contact", "Login | Register", "Share: Facebook Twitter", "Copyright 2024 Example"]
PROSE = [
    "The council approved the new lanes on Tuesday evening.",
    "Supporters said the change would make short trips safer.",
    "Construction is planned to start early next summer.",
    "Shop owners asked the council to keep loading bays.",
]


def page(rng: random.Random) -> tuple[list[str], list[int]]:
    lines = [*rng.sample(NAV, 2), *rng.sample(PROSE, 3), rng.choice(NAV)]
    return lines, [0, 0, 1, 1, 1, 0]


def write_seed(path, pages: int = 12):
    rng = random.Random(0)
    records = []
    for index in range(pages):
        lines, labels = page(rng)
        gold = "\n".join(line for line, keep in zip(lines, labels, strict=True) if keep)
        records.append({
            "source": f"synthetic/{index}", "site": f"site{index % 6}", "subset": "synthetic", "stage": "chunk",
            "text": "\n".join(lines), "labels": labels, "gold": gold,
        })  # fmt: skip
    for index in range(8):
        text = "\n".join(PROSE) if index % 2 else "\n".join(NAV)
        records.append(
            {"source": f"dclm/{index}", "site": f"dclm/{index}", "stage": "doc", "text": text, "label": index % 2}
        )
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture
def seed(tmp_path):
    return write_seed(tmp_path / "seed.jsonl")


@pytest.fixture
def config(tiny_backbone):
    return TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32, width=32)


def test_load_seed_reads_both_stages_and_names_a_bad_line(seed, tmp_path):
    examples = load_seed(seed)
    assert [e.stage for e in examples].count("chunk") == 12
    assert examples[0].remove == [True, True, False, False, False, True]
    assert [e.drop for e in examples if e.stage == "doc"][:2] == [True, False]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "x"}\n')
    with pytest.raises(ValueError, match=f"{bad}:1: not a seed example"):
        load_seed(bad)


def test_states_are_computed_once_and_cached(seed, config, tmp_path):
    examples = load_seed(seed)[:3]
    first = tagger.StateStore(tmp_path / "states", config).all(examples)
    again = tagger.StateStore(tmp_path / "states", config)
    assert [s.shape for s in again.all(examples)] == [s.shape for s in first] == [(6, config.features)] * 3
    assert again._backbone is None  # read from disk, no model loaded
    surfaced = TaggerConfig(**{**config.__dict__, "surface": True})
    surfaced_store = tagger.StateStore(tmp_path / "states", surfaced)
    with_surface = surfaced_store.all(examples)
    assert surfaced_store._backbone is None  # the same cache, read as it is
    assert [s.shape for s in with_surface] == [(6, config.features + SURFACE_FEATURES)] * 3
    assert torch.equal(with_surface[0][:, : config.features], first[0])


def test_states_computed_in_bfloat16_are_stored_as_float32_in_a_folder_of_their_own(seed, config, tmp_path):
    examples = load_seed(seed)[:2]
    full = tagger.StateStore(tmp_path / "states", config)
    half = tagger.StateStore(tmp_path / "states", config, dtype="bfloat16")
    assert half.dtype == "bfloat16" and full.dtype == "float32" and half.folder != full.folder
    exact, rounded = full.all(examples), half.all(examples)
    assert half._backbone.decoder.dtype == torch.bfloat16
    assert all(state.dtype == torch.float32 for state in rounded)
    assert all(not torch.equal(a, b) and torch.allclose(a, b, atol=0.2) for a, b in zip(exact, rounded, strict=True))
    assert tagger.StateStore(tmp_path / "states", config, dtype="auto").dtype in ("float32", "bfloat16")


def test_a_store_reads_a_document_as_its_doc_head_does_and_pools_the_statistics_of_its_lines(config, tmp_path):
    lines = ["Home | About", "The council met on Tuesday evening and approved the new lanes."]
    doc = Example("d", "d", "doc", lines, drop=False)
    pieced = replace(config, doc_piece_words=4, doc_pieces_above=6, doc_statistics=True)
    store, whole = tagger.StateStore(tmp_path / "states", pieced), tagger.StateStore(tmp_path / "states", config)
    assert store.read_lines(doc) == [
        "Home | About",
        "The council met on",
        "Tuesday evening and approved",
        "the new lanes.",
    ]
    assert store.states(doc).shape == (4, config.features) and whole.states(doc).shape == (2, config.features)
    assert store._key(doc) != whole._key(doc) and store.chunks(doc) == [(0, 4)]
    page = Example("p", "p", "chunk", lines, remove=[True, False])
    assert store.read_lines(page) == lines  # a page's lines stay whole: its program decides each one
    heads = tagger.TaggerHeads.for_config(pieced)
    [pooled] = tagger.pool_documents(heads, [store.states(doc)], [lines], pieced)
    assert torch.allclose(pooled, heads.pooled(store.states(doc), texts=lines, origins=[0, 1, 1, 1]))
    [of_pieces] = tagger.pool_documents(heads, [store.states(doc)], [store.read_lines(doc)])
    assert not torch.allclose(pooled, of_pieces)  # the statistics are not those of the pieces


def test_train_tagger_refuses_an_unknown_states_dtype(seed, tmp_path):
    result = CliRunner().invoke(
        app, ["train", "tagger", "--seed", str(seed), "-o", str(tmp_path / "t"), "--dtype", "int8"]
    )
    assert result.exit_code == 2 and "'int8' is not one of auto, float32, bfloat16" in result.output


def test_a_chunked_store_reads_each_run_time_chunk_in_its_own_forward_pass(seed, config, tmp_path):
    page = load_seed(seed)[0]
    store = tagger.StateStore(tmp_path / "states", config, chunk_budget=40)
    chunks = store.chunks(page)
    assert len(chunks) > 1 and [start for start, _ in chunks] == [0] + [end for _, end in chunks[:-1]]
    assert chunks[-1][1] == len(page.lines)
    states = store.states(page)
    backbone = Backbone(config)
    for start, end in chunks:  # as the writer reads a chunk prompt: its lines, numbered from 0 in any layout
        assert torch.allclose(states[start:end], backbone.line_states(page.lines[start:end]), atol=1e-5)
    whole = tagger.StateStore(tmp_path / "states", config)
    assert whole.chunks(page) == [(0, len(page.lines))]
    assert whole.folder == store.folder and whole._key(page) != store._key(page)  # one cache, two files
    doc = Example(page.source, page.site, "doc", page.lines, drop=False)
    assert whole._key(doc) == store._key(doc)  # a doc example is read the same way by both
    second = chunks[1][0]  # beyond the first chunk a line's state saw less of the page
    assert not torch.allclose(whole.states(page)[second:], states[second:], atol=1e-3)
    assert torch.allclose(whole.states(page)[:second], states[:second], atol=1e-5)  # a prefix is a prefix
    surfaced = tagger.StateStore(tmp_path / "states", replace(config, surface=True), chunk_budget=40)
    positions = surfaced.states(page)[:, -1]  # each chunk's lines run from 0 (first) to 1 (last)
    assert [positions[start].item() for start, _ in chunks] == [0.0] * len(chunks)
    longer = [(start, end) for start, end in chunks if end - start > 1]
    assert [positions[end - 1].item() for _, end in longer] == [1.0] * len(longer)


def test_pages_split_into_chunks_keep_their_labels_and_states_and_the_heads_run_per_chunk(seed, config, tmp_path):
    examples = load_seed(seed)
    pages = [e for e in examples if e.stage == "chunk"][:2]
    doc = next(e for e in examples if e.stage == "doc")
    states = [torch.randn(len(p.lines), config.features) for p in pages] + [torch.randn(4, config.features)]
    chunks = [[(0, 2), (2, 6)], [(0, 6)], [(0, 4)]]
    units, unit_states = tagger.split_chunks([*pages, doc], states, chunks)
    assert [u.lines for u in units] == [pages[0].lines[:2], pages[0].lines[2:], pages[1].lines, doc.lines]
    assert [u.remove for u in units[:2]] == [pages[0].remove[:2], pages[0].remove[2:]] and units[3] is doc
    assert torch.equal(unit_states[1], states[0][2:]) and units[0].site == pages[0].site
    heads = TaggerHeads.for_config(config).eval()
    [per_chunk] = tagger.line_probabilities(heads, states[:1], chunks[:1])
    expected = [p for s in unit_states[:2] for p in tagger.line_probabilities(heads, [s])[0]]
    assert per_chunk == pytest.approx(expected)
    assert per_chunk != pytest.approx(tagger.line_probabilities(heads, states[:1])[0])  # the conv saw across
    assert unit_states[2] is states[1] and units[2] is pages[1]  # one chunk: the page itself
    window = torch.randn(2, config.features)  # a doc example's states: its first forward pass only
    assert tagger.split_chunks([doc], [window], [[(0, len(doc.lines))]])[1] == [window]
    with pytest.raises(ValueError, match="do not cover its 6 lines"):
        tagger.split_chunks(pages[:1], states[:1], [[(0, 2), (3, 6)]])


def test_training_on_chunks_scores_what_the_writer_writes_at_run_time(seed, config, tmp_path):
    config = replace(config, surface=True, recurrent=True)  # heads that look beyond a line's neighbours
    pages = [e for e in load_seed(seed) if e.stage == "chunk"]
    store = tagger.StateStore(tmp_path / "states", config, chunk_budget=40)
    states, chunks = store.all(pages), [store.chunks(page) for page in pages]
    heads = tagger.train_heads(*tagger.split_chunks(pages, states, chunks), config, epochs=3)
    tagger.save_tagger(heads, config, tmp_path / "tagger")
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(tmp_path / "tagger", tokenizer)
    for page, probabilities in zip(pages[:3], tagger.line_probabilities(heads, states, chunks), strict=False):
        parts = chunk_document("\n".join(page.lines), line_cost(tokenizer), 40)  # as prox refine cuts it
        written = writer.generate([chunk_prompt_ids(part.text, tokenizer).ids for part in parts], 64)
        removes = [p >= config.line_threshold for p in probabilities]
        expected = [Program.removing(removes[part.first_line : part.last_line + 1], part.first_line) for part in parts]
        assert [generation.text for generation in written] == [program.render() for program in expected]


def _pid() -> int:
    return os.getpid()


def test_tasks_run_in_forked_workers_and_return_in_order(seed, config, tmp_path):
    assert tagger.run_tasks([functools.partial(pow, 2, n) for n in range(5)], jobs=2) == [1, 2, 4, 8, 16]
    assert set(tagger.run_tasks([_pid] * 4, jobs=2)) - {os.getpid()}  # elsewhere
    assert tagger.run_tasks([_pid], jobs=2) == [os.getpid()]  # one task: no worker needed
    with pytest.raises(ZeroDivisionError):  # a failing task fails the call
        tagger.run_tasks([functools.partial(divmod, 1, 0), _pid], jobs=2)
    for jobs in (1, 2):  # each result is handed over here as its task finishes
        seen = []
        tasks = [functools.partial(pow, 3, n) for n in range(4)]
        assert tagger.run_tasks(tasks, jobs, lambda index, result, s=seen: s.append((index, result))) == [1, 3, 9, 27]
        assert sorted(seen) == [(0, 1), (1, 3), (2, 9), (3, 27)]
    examples = [e for e in load_seed(seed) if e.stage == "chunk"]
    store = tagger.StateStore(tmp_path / "states", config, chunk_budget=40)
    states, chunks = store.all(examples), [store.chunks(e) for e in examples]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers, so both runs sum floats in the same order
    try:
        here = tagger.run_tasks(tagger.fold_tasks(examples, states, config, 3, 3, chunks), jobs=1)
    finally:
        torch.set_num_threads(threads)
    assert tagger.run_tasks(tagger.fold_tasks(examples, states, config, 3, 3, chunks), jobs=3) == here


def test_the_heads_learn_the_labels_of_their_training_pages(seed, config, tmp_path):
    examples = load_seed(seed)
    states = tagger.StateStore(tmp_path / "states", config).all(examples)
    heads = tagger.train_heads(examples, states, config, epochs=40)
    pages = [(e, s) for e, s in zip(examples, states, strict=True) if e.remove]
    lines = tagger.line_probabilities(heads, [s for _, s in pages])
    predicted = [p >= 0.5 for probs in lines for p in probs]
    correct = sum(p == r for p, r in zip(predicted, [r for e, _ in pages for r in e.remove], strict=True))
    assert correct / sum(len(e.remove) for e, _ in pages) >= 0.9
    docs = [(e, s) for e, s in zip(examples, states, strict=True) if e.drop is not None]
    drops = tagger.drop_probabilities(heads, [s for _, s in docs], [e.lines for e, _ in docs])
    assert [p >= 0.5 for p in drops] == [e.drop for e, _ in docs]


def test_the_doc_probe_fits_a_separable_set_and_its_penalty_is_chosen_by_cross_validation():
    generator = torch.Generator().manual_seed(0)
    drops = [index % 2 == 0 for index in range(40)]
    pooled = torch.randn(40, 6, generator=generator)
    pooled[:, 0] += torch.tensor([4.0 if drop else -4.0 for drop in drops])  # one informative feature
    penalty = tagger.choose_penalty(pooled, drops)
    assert penalty in tagger.PENALTIES
    probe = tagger.fit_doc_probe(DocProbe(6), pooled, drops, penalty)
    with torch.no_grad():
        assert [float(logit) >= 0 for logit in probe(pooled)] == drops
        assert probe.linear.weight[0, 0].abs() == probe.linear.weight.abs().max()  # it found the feature
    weak = tagger.fit_doc_probe(DocProbe(6), pooled, drops, 1000.0)
    assert weak.linear.weight.abs().sum() < probe.linear.weight.abs().sum()  # the penalty shrinks weights
    assert tagger.choose_penalty(pooled[:6], drops[:6]) == tagger.PENALTIES[-1]  # too few to cross-validate


def test_doc_cross_validation_repeats_folds_and_reports_mean_and_spread(seed, config, tmp_path):
    examples = load_seed(seed)
    states = tagger.StateStore(tmp_path / "states", config).all(examples)
    heads = tagger.train_heads(examples, states, config, epochs=5)
    docs = [(e, s) for e, s in zip(examples, states, strict=True) if e.drop is not None]
    report = tagger.cross_validate_docs([e for e, _ in docs], [s for _, s in docs], heads, folds=4, repeats=3)
    assert report["documents"] == 8 and report["repeats"] == 3
    assert 0.0 <= report["accuracy"]["mean"] <= 1.0 and report["accuracy"]["sd"] >= 0.0
    assert 0.0 <= report["gopher_c4_fineweb_rules"]["accuracy"] <= 1.0  # the baseline, on the same documents


def test_cross_validation_holds_out_sites_and_scores_the_c4_rule_too(seed, config, tmp_path):
    examples = [e for e in load_seed(seed) if e.stage == "chunk"]
    states = tagger.StateStore(tmp_path / "states", config).all(examples)
    results = tagger.run_tasks(tagger.fold_tasks(examples, states, config, folds=3, epochs=5))
    report = {"folds": results, "mean": tagger.mean_fold_scores(results)}
    assert len(report["folds"]) == 3
    assert set(report["mean"]) >= {"tagger.content_word_f1", "c4_line_rule.content_word_f1"}
    gain = report["mean"]["content_word_f1_gain_over_c4"]["mean"]
    means = report["mean"]["tagger.content_word_f1"]["mean"] - report["mean"]["c4_line_rule.content_word_f1"]["mean"]
    assert abs(gain - means) < 1e-3  # the paired gain per fold, averaged
    assert sum(fold["tagger"]["pages"] for fold in report["folds"]) == len(examples)


def test_leave_one_collection_out_tests_each_collection_whole_and_reports_each_rendering(seed, config, tmp_path):
    examples = [e for e in load_seed(seed) if e.stage == "chunk"]
    for index, example in enumerate(examples):
        example.collection = ("older", "newer")[index % 2]
        example.rendering = ("resiliparse", "inscriptis")[index // 2 % 2]
        example.page_type = ("article", "forum")[index // 4 % 2] if example.collection == "newer" else None
    states = tagger.StateStore(tmp_path / "states", config).all(examples)
    results = tagger.run_tasks(tagger.fold_tasks(examples, states, config, epochs=3, by_collection=True))
    assert [result["collection"] for result in results] == ["newer", "older"]
    newer, older = results
    assert {name: group["tagger"]["pages"] for name, group in newer["page_types"].items()} == {
        f"page_type={kind}": sum(e.page_type == kind for e in examples) for kind in ("article", "forum")
    }
    assert "page_types" not in older  # a collection without page types
    for result in results:
        in_collection = [e for e in examples if e.collection == result["collection"]]
        assert result["tagger"]["pages"] == result["c4_line_rule"]["pages"] == len(in_collection)
        per_rendering = {name: group["tagger"]["pages"] for name, group in result["groups"].items()}
        assert per_rendering == {
            f"rendering={name},language=-": sum(e.rendering == name for e in in_collection)
            for name in {e.rendering for e in in_collection}
        }


def test_clean_copies_are_trained_on_but_never_validated_or_tested_on(seed, config, tmp_path, monkeypatch):
    pages = [e for e in load_seed(seed) if e.stage == "chunk"]
    for index, page in enumerate(pages):
        page.collection = ("older", "newer")[index % 2]
    examples = pages + clean_text_pages(pages)
    assert sum(map(tagger.is_clean_copy, examples)) == len(pages)
    states = tagger.StateStore(tmp_path / "states", config).all(examples)
    trained, validated = [], []
    train_heads, best_threshold = tagger.train_heads, tagger.best_threshold
    monkeypatch.setattr(tagger, "train_heads", lambda units, *rest: trained.append(units) or train_heads(units, *rest))
    monkeypatch.setattr(
        tagger, "best_threshold", lambda pages, *rest: validated.append(pages) or best_threshold(pages, *rest)
    )
    results = tagger.run_tasks(tagger.fold_tasks(examples, states, config, epochs=2, by_collection=True))
    for result, units in zip(results, trained, strict=True):
        left_out = result["collection"]
        assert result["tagger"]["pages"] == sum(page.collection == left_out for page in pages)  # no copy tested
        assert all("rendering=gold" not in name for name in result["groups"])
        copies = {unit.collection for unit in units if tagger.is_clean_copy(unit)}
        assert copies == {"older", "newer"} - {left_out}  # the other collection's copies trained on
    tagger.train_tagger(examples, states, config, epochs=2)
    assert trained[-1] and any(map(tagger.is_clean_copy, trained[-1]))
    assert validated and not any(tagger.is_clean_copy(page) for pages in validated for page in pages)


def test_validated_languages_are_those_where_the_folds_kept_lines_at_least_as_well_as_the_rule():
    def group(pages: int, tagger_f1: float, rule_f1: float) -> dict:
        return {"tagger": {"pages": pages, "kept_line_f1": tagger_f1}, "c4_line_rule": {"kept_line_f1": rule_f1}}

    results = [
        {"groups": {"rendering=-,language=de": group(4, 0.9, 0.6), "rendering=-,language=fi": group(6, 0.5, 0.7)}},
        {"groups": {"rendering=-,language=de": group(4, 0.6, 0.7), "rendering=-,language=pl": group(2, 0.9, 0.1)}},
        {
            "groups": {
                "rendering=inscriptis,language=en": group(9, 0.8, 0.8),
                "rendering=html-text,language=-": group(9, 0, 1),
            }
        },
    ]
    assert tagger.validated_languages(results) == ("de", "en")  # fi worse than the rule; pl: too few pages
    assert tagger.validated_languages([{"groups": {"rendering=-,language=-": group(9, 1, 0)}}]) is None


def test_the_doc_heads_languages_are_those_of_enough_of_its_documents():
    english = "The council said that it would open the new library in the spring, and that it was planning more."
    german = "Der Rat hat gesagt, dass die neue Bibliothek im Frühling eröffnet wird und auch nicht teurer ist."
    documents = [Example(f"d{i}", "s", "doc", [english], drop=False) for i in range(30)]
    documents += [Example(f"g{i}", "s", "doc", [german], drop=False) for i in range(4)]
    assert tagger.fitted_languages(documents) == ("en",)  # 4 German documents: too few
    assert tagger.fitted_languages(documents, min_documents=4) == ("de", "en")
    assert tagger.fitted_languages(documents, min_share=0.5) == ("en",)
    assert tagger.fitted_languages(documents[-4:]) == ("de",)  # the commonest always counts
    assert tagger.fitted_languages([Example("n", "s", "doc", ["Home | About"], drop=True)]) is None


@pytest.mark.parametrize("surface", [True, False])
def test_prox_train_tagger_writes_a_model_the_writer_loads(seed, config, tmp_path, surface):
    attention = surface  # both options on, and both off
    out = tmp_path / "tagger"
    result = CliRunner().invoke(
        app,
        ["train", "tagger", "--seed", str(seed), "-o", str(out), "--base", config.base, "--depth", "4",
         "--layers", "1,3", "--states", str(tmp_path / "states"), "--folds", "2", "--epochs", "5",
         "--surface" if surface else "--no-surface", "--attention" if attention else "--no-attention",
         "--recurrent" if attention else "--no-recurrent", "--chunk-budget", "40" if surface else "0",
         "--jobs", "3" if surface else "1", "--device", "cpu",
         "--doc-statistics" if surface else "--no-doc-statistics", *([] if surface else ["--no-plain-markup"])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "chunk" in report and 0.0 <= report["doc"]["accuracy"]["mean"] <= 1.0
    saved = TaggerConfig.load(out)
    assert saved.metrics == report and 0 < saved.line_threshold < 1 and saved.doc_languages == ("en",)
    assert (saved.depth, saved.layers, saved.surface, saved.attention) == (4, (1, 3), surface, attention)
    assert saved.recurrent == saved.doc_statistics == saved.plain_markup == attention  # plain markup by default
    assert saved.chunk_budget == (40 if surface else 0)
    tokenizer = load_tokenizer(config.base)
    [generation] = TaggerWriter(out, tokenizer).generate([chunk_prompt_ids("[000]Home | About", tokenizer).ids], 1)
    assert generation.text in ("keep_chunk()", "remove_lines(line_start=0, line_end=0)")


def test_prox_train_tagger_writes_the_final_heads_before_a_fold_fails(seed, config, tmp_path, monkeypatch):
    def failing_fold() -> dict:
        raise RuntimeError("fold failed")

    monkeypatch.setattr(tagger, "fold_tasks", lambda *args, **options: [failing_fold])
    out = tmp_path / "tagger"
    result = CliRunner().invoke(
        app,
        ["train", "tagger", "--seed", str(seed), "-o", str(out), "--base", config.base, "--depth", "4",
         "--layers", "1,3", "--states", str(tmp_path / "states"), "--folds", "2", "--epochs", "2"],
    )  # fmt: skip
    assert isinstance(result.exception, RuntimeError)
    saved = TaggerConfig.load(out)  # the final heads (trained first) and their threshold, without the report
    assert saved.metrics == {} and 0 < saved.line_threshold < 1
    tokenizer = load_tokenizer(config.base)
    assert TaggerWriter(out, tokenizer).generate([chunk_prompt_ids("[000]Home | About", tokenizer).ids], 1)


def test_a_rerun_reads_back_the_tasks_an_interrupted_run_finished_and_trains_only_the_rest(
    seed, config, tmp_path, monkeypatch
):
    out = tmp_path / "tagger"
    args = ["train", "tagger", "--seed", str(seed), "-o", str(out), "--base", config.base, "--depth", "4",
            "--layers", "1,3", "--states", str(tmp_path / "states"), "--folds", "3", "--epochs", "2"]  # fmt: skip
    real_fold_tasks, real_train_heads = tagger.fold_tasks, tagger.train_heads
    trained = []
    monkeypatch.setattr(tagger, "train_heads", lambda *a, **k: trained.append(1) or real_train_heads(*a, **k))

    def run(*options: str, fold_fails: bool = False):
        def second_fold_fails(*args, **settings):
            tasks = real_fold_tasks(*args, **settings)
            return [tasks[0], lambda: (_ for _ in ()).throw(RuntimeError("killed")), tasks[2]]

        monkeypatch.setattr(tagger, "fold_tasks", second_fold_fails if fold_fails else real_fold_tasks)
        trained.clear()
        return CliRunner().invoke(app, [*args, *options])

    assert isinstance(run(fold_fails=True).exception, RuntimeError)  # the final heads and fold 0 finished
    heads = (out / "heads.safetensors").read_bytes()
    resumed = run()
    assert resumed.exit_code == 0, resumed.output
    assert len(trained) == 2  # folds 1 and 2 only: the final heads and fold 0 were read back
    assert (out / "heads.safetensors").read_bytes() == heads
    assert [fold["fold"] for fold in json.loads(resumed.stdout)["chunk_folds"]] == [0, 1, 2]
    assert not (out / "progress").exists()  # the run ended: nothing left to resume
    assert run().exit_code == 0 and len(trained) == 4  # so the same command again is a new run
    assert isinstance(run(fold_fails=True).exception, RuntimeError)
    (out / "heads.safetensors").write_bytes(b"not these weights")  # not what the record vouches for
    assert run().exit_code == 0 and len(trained) == 3  # the final heads again, folds 1 and 2
    assert isinstance(run(fold_fails=True).exception, RuntimeError)
    assert run("--epochs", "3").exit_code == 0 and len(trained) == 4  # other settings: nothing read back
    seed.write_text(seed.read_text().replace('"site": "site1"', '"site": "site9"'))
    assert isinstance(run(fold_fails=True).exception, RuntimeError)
    assert run().exit_code == 0 and len(trained) == 2  # same examples, sites and all: read back
    assert isinstance(run(fold_fails=True).exception, RuntimeError)
    seed.write_text(seed.read_text().replace('"site": "site9"', '"site": "site1"'))
    assert run().exit_code == 0 and len(trained) == 4  # another site is another split: nothing read back


def test_shares_of_the_line_states_fill_the_cache_a_whole_extraction_does(seed, config, tmp_path):
    args = ["train", "tagger", "--seed", str(seed), "-o", str(tmp_path / "t"), "--base", config.base, "--depth", "4",
            "--device", "cpu", "--extract-only"]  # fmt: skip

    def cached(states) -> set[str]:
        return {path.name for path in states.glob("*/*.pt")}

    whole = CliRunner().invoke(app, [*args, "--states", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    assert len(cached(tmp_path / "whole")) == 12 + 8 and not (tmp_path / "t").exists()  # states only
    first = CliRunner().invoke(app, [*args, "--states", str(tmp_path / "shared"), "--shard", "0/2"])
    assert first.exit_code == 0, first.output
    assert len(cached(tmp_path / "shared")) == 10 and cached(tmp_path / "shared") < cached(tmp_path / "whole")
    assert CliRunner().invoke(app, [*args, "--states", str(tmp_path / "shared"), "--shard", "1/2"]).exit_code == 0
    assert cached(tmp_path / "shared") == cached(tmp_path / "whole")
    for bad, message in (("2/2", "K must lie within 0..N-1"), ("half", "is not K/N")):
        refused = CliRunner().invoke(app, [*args, "--shard", bad])
        assert refused.exit_code == 2 and message in refused.output
    training = CliRunner().invoke(app, [*args[:-1], "--shard", "0/2"])
    assert training.exit_code == 2 and "needs --extract-only" in training.output


@pytest.mark.parametrize("surface", [False, True])
def test_doc_examples_of_labelled_pages_reuse_the_first_window_of_their_page_states(
    seed, tiny_backbone, tmp_path, surface
):
    config = TaggerConfig(
        base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32, max_tokens=40, surface=surface
    )
    pages = [e for e in load_seed(seed) if e.stage == "chunk"][:2]
    pages.append(replace(pages[0], lines=["The same page as another tool writes it."], rendering="other"))
    states = tagger.StateStore(tmp_path / "states", config).all(pages)
    docs = [Example(pages[0].source, pages[0].site, "doc", pages[0].lines, drop=False)]  # its first rendering
    docs.append(Example("elsewhere/1", "x", "doc", ["Other text."], drop=True))  # no page: left out
    chosen, doc_states = tagger.page_doc_states(config, docs, pages, states)
    assert chosen == docs[:1]
    direct = tagger.StateStore(tmp_path / "direct", config).states(docs[0])  # computed by the backbone
    assert doc_states[0].shape == direct.shape and direct.shape[0] < len(pages[0].lines)
    assert torch.allclose(doc_states[0], direct, atol=1e-5)
    store = tagger.StateStore(tmp_path / "states", config, chunk_budget=30)  # chunks shorter than the window
    chunks = [store.chunks(page) for page in pages]
    _, [cut] = tagger.page_doc_states(config, docs, pages, store.all(pages), chunks)
    first_chunk = chunks[0][0][1]
    assert first_chunk < direct.shape[0] and cut.shape[0] == first_chunk  # the exact rows only
    assert torch.allclose(cut[:, : config.features], direct[:first_chunk, : config.features], atol=1e-5)


def test_prox_train_tagger_refuses_layers_the_backbone_does_not_run(seed, config, tmp_path):
    args = ["train", "tagger", "--seed", str(seed), "-o", str(tmp_path / "t"), "--base", config.base, "--depth", "4"]
    result = CliRunner().invoke(app, [*args, "--layers", "2,6"])
    assert result.exit_code == 2 and "--layers" in result.output and "must lie within 0..depth=4" in result.output
    too_deep = CliRunner().invoke(app, [*args[:-1], "99"])
    assert too_deep.exit_code == 2 and "--depth" in too_deep.output and "depth 99 must lie within" in too_deep.output
    not_numbers = CliRunner().invoke(app, [*args, "--layers", "2,last"])
    assert not_numbers.exit_code == 2 and "'2,last' is not a comma-separated list" in not_numbers.output


def test_prox_train_tagger_names_a_base_it_cannot_load(seed, tmp_path):
    missing = tmp_path / "no-such-model"
    args = ["train", "tagger", "--seed", str(seed), "-o", str(tmp_path / "t"), "--base", str(missing)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--base" in result.output and "cannot load" in result.output


def test_prox_train_doc_probe_refits_only_the_doc_probe_of_a_tagger(seed, config, tmp_path):
    tagger_dir = tmp_path / "tagger"
    heads = TaggerHeads.for_config(config)
    trained = replace(config, metrics={"chunk": {"folds": 5}, "doc_labelled_pages": {"accuracy": 0.5}})
    tagger.save_tagger(heads, trained, tagger_dir)
    records = [json.loads(line) for line in seed.read_text().splitlines()]
    for index in range(10):  # page-typed documents of five sites: articles keep, listings drop
        kind = "article" if index % 2 else "listing"
        text = "\n".join(PROSE if index % 2 else NAV)
        records.append({"source": f"wcxb-dev/{index}", "site": f"s{index % 5}", "stage": "doc", "text": text,
                        "label": index % 2, "collection": "wcxb", "page_type": kind})  # fmt: skip
    seed.write_text("".join(json.dumps(record) + "\n" for record in records))
    out = tmp_path / "refitted"
    args = ["train", "doc-probe", "--seed", str(seed), "--tagger", str(tagger_dir), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--states", str(tmp_path / "states")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    refitted = TaggerConfig.load(out)
    expected = {**report, "documents": 18, "penalty": 1.0, "statistics": True, "renderings": True}
    assert refitted.metrics["doc"] == expected | {"piece_words": None, "pieces_above": None}
    assert refitted.doc_piece_words is None
    assert refitted.doc_statistics and not config.doc_statistics  # the probe reads the text's statistics too
    assert refitted.metrics["chunk"] == {"folds": 5} and "doc_labelled_pages" not in refitted.metrics  # stale
    assert TaggerConfig.load(out).doc_languages == ("en",)
    from safetensors.torch import load_file

    before, after = load_file(str(tagger_dir / "heads.safetensors")), load_file(str(out / "heads.safetensors"))
    assert all(torch.equal(before[name], after[name]) for name in before if not name.startswith("doc."))
    assert after["doc.linear.weight"].shape[1] == before["doc.linear.weight"].shape[1] + DOCUMENT_STATISTICS
    tokenizer = load_tokenizer(config.base)  # the refitted tagger runs: its doc probe reads the lines' text
    [program] = TaggerWriter(out, tokenizer).generate([doc_prompt_ids("\n".join(PROSE), tokenizer).ids], 1)
    assert program.text in ("keep_doc()", "drop_doc()") and program.score is not None
    plain = CliRunner().invoke(app, [*args, "--states", str(tmp_path / "states"), "-o", str(tmp_path / "plain"),
                                     "--no-statistics"])  # fmt: skip
    assert plain.exit_code == 0 and not TaggerConfig.load(tmp_path / "plain").doc_statistics
    pieces = CliRunner().invoke(app, [*args, "--states", str(tmp_path / "states"), "-o", str(tmp_path / "pieces"),
                                      "--piece-words", "3", "--pieces-above", "12"])  # fmt: skip
    assert pieces.exit_code == 0, pieces.output
    pieced = TaggerConfig.load(tmp_path / "pieces")
    assert (pieced.doc_piece_words, pieced.doc_pieces_above) == (3, 12)
    assert {"piece_words": 3, "pieces_above": 12}.items() <= pieced.metrics["doc"].items()
    plain_weights = load_file(str(tmp_path / "plain" / "heads.safetensors"))["doc.linear.weight"]
    assert plain_weights.shape == before["doc.linear.weight"].shape
    assert not torch.equal(plain_weights, before["doc.linear.weight"])  # refitted, not copied
    not_a_tagger = CliRunner().invoke(app, [*args[:-4], "--tagger", str(tmp_path), "-o", str(out)])
    assert not_a_tagger.exit_code != 0
    uncut = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "uncut"), "--pieces-above", "12"])
    assert uncut.exit_code != 0 and "--piece-words" in uncut.output and not (tmp_path / "uncut").exists()


def test_the_state_store_runs_the_backbone_where_it_is_told(config, tmp_path, monkeypatch):
    assert tagger.StateStore(tmp_path, config, device="cpu").device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    on_a_gpu = tagger.StateStore(tmp_path, config, dtype="auto")
    assert (on_a_gpu.device, on_a_gpu.dtype) == ("cuda", "bfloat16")  # a GPU when there is one, at its best dtype
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    store = tagger.StateStore(tmp_path, config)
    assert store.device == "cpu" and store.dtype == "float32"
    store.states(Example("p", "s", "chunk", ["Home | About", "The council met."], [True, False]))
    assert store._backbone.device == "cpu"


def test_the_doc_probe_learns_from_what_the_writer_reads_of_a_long_document(config, tmp_path):
    long = Example("dclm/long", "dclm/long", "doc", [" ".join(PROSE)] * 120, drop=False)  # past the prompt's budget
    [read] = tagger.as_read_at_run_time([long], config)
    assert 0 < len(read.lines) < 60  # the doc prompt's 2000 tokens, not a 2048-token window of 32-token lines
    assert read.lines[:-1] == long.lines[: len(read.lines) - 1] and long.lines[0].startswith(read.lines[-1][:20])
    page = Example("p", "s", "chunk", long.lines, remove=[False] * 120)
    assert tagger.as_read_at_run_time([page], config) == [page]  # chunk pages are read whole
    with_statistics = replace(config, doc_statistics=True)
    heads = TaggerHeads.for_config(with_statistics)
    tagger.save_tagger(heads, with_statistics, tmp_path / "tagger")
    states = tagger.StateStore(tmp_path / "states", config).states(read)
    [trained_on] = tagger.drop_probabilities(heads, [states], [read.lines])
    tokenizer = load_tokenizer(config.base)
    prompt = doc_prompt_ids("\n".join(long.lines), tokenizer).ids
    [written] = TaggerWriter(tmp_path / "tagger", tokenizer, dtype="float32").generate([prompt], 1)
    assert written.score == pytest.approx(trained_on, abs=1e-4)


def test_only_some_collections_folds_run_alone_and_write_their_report_not_a_tagger(seed, config, tmp_path):
    records = [json.loads(line) for line in seed.read_text().splitlines()]
    for index, record in enumerate(records):
        record["collection"] = ("older", "newer", "newest")[index % 3] if record["stage"] == "chunk" else "dclm"
    seed.write_text("".join(json.dumps(record) + "\n" for record in records))
    out, states = tmp_path / "folds", tmp_path / "states"
    args = ["train", "tagger", "--seed", str(seed), "-o", str(out), "--base", config.base, "--depth", "4",
            "--layers", "1,3", "--states", str(states), "--epochs", "2", "--device", "cpu"]  # fmt: skip
    unknown = CliRunner().invoke(app, [*args, "--only-collection", "newer", "--only-collection", "oldest"])
    assert unknown.exit_code == 2 and "no chunk pages of oldest to leave out" in unknown.output
    assert not states.exists()  # refused before any line state was computed
    result = CliRunner().invoke(app, [*args, "--only-collection", "newest", "--only-collection", "older"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [fold["collection"] for fold in report["chunk_folds"]] == ["newest", "older"]
    assert report["chunk_folds"][0]["tagger"]["pages"] == 4  # every page of the collection left out, tested
    assert json.loads((out / tagger.FOLDS_REPORT).read_text()) == report
    assert not (out / "tagger.json").exists() and not (out / "heads.safetensors").exists()


def test_prox_train_tagger_samples_pages_leaves_collections_out_and_trains_on_clean_copies(
    config, tmp_path, monkeypatch
):
    seed = write_seed(tmp_path / "seed.jsonl", pages=12)
    records = [json.loads(line) for line in seed.read_text().splitlines()]
    for index, record in enumerate(records):
        record["collection"] = ("older", "newer")[index % 2] if record["stage"] == "chunk" else "dclm"
    seed.write_text("".join(json.dumps(record) + "\n" for record in records))
    trained, train_heads = [], tagger.train_heads
    monkeypatch.setattr(tagger, "train_heads", lambda units, *rest: trained.append(units) or train_heads(units, *rest))
    result = CliRunner().invoke(
        app,
        ["train", "tagger", "--seed", str(seed), "-o", str(tmp_path / "out"), "--base", config.base, "--depth", "4",
         "--layers", "2,4", "--states", str(tmp_path / "states"), "--folds", "2", "--epochs", "2", "--jobs", "1",
         "--chunk-budget", "0", "--max-pages", "8", "--leave-collection-out", "--clean-copies"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folds = json.loads(result.stdout)["chunk_folds"]
    assert sorted((fold["collection"], fold["tagger"]["pages"]) for fold in folds) == [("newer", 4), ("older", 4)]
    assert trained and all(any(map(tagger.is_clean_copy, units)) for units in trained)
    sampled = [[u for u in units if u.stage == "chunk" and not tagger.is_clean_copy(u)] for units in trained]
    # each fold trains on the other collection's 4 sampled pages less those of held-out site fold 0 (1 here)
    assert all(len(pages) <= 8 for pages in sampled) and {len(pages) for pages in sampled[1:]} == {3}


def test_prox_train_tagger_also_trains_on_another_rendering_of_the_pages_it_draws(config, tmp_path, monkeypatch):
    seed = write_seed(tmp_path / "seed.jsonl", pages=12)
    records = [json.loads(line) for line in seed.read_text().splitlines()]
    markdown = [{**r, "rendering": "markdown", "text": r["text"].replace("Home", "[Home](/)")} for r in records[:12]]
    both = tmp_path / "both.jsonl"
    both.write_text("".join(json.dumps(record) + "\n" for record in records + markdown))
    trained, train_heads = [], tagger.train_heads
    monkeypatch.setattr(tagger, "train_heads", lambda units, *rest: trained.append(units) or train_heads(units, *rest))
    args = [
        "train",
        "tagger",
        "--base",
        config.base,
        "--depth",
        "4",
        "--layers",
        "2,4",
        "--states",
        str(tmp_path / "states"),
        "--folds",
        "0",
        "--epochs",
        "1",
        "--chunk-budget",
        "0",
        "--max-pages",
        "6",
    ]
    for data, option in ((seed, []), (both, ["--also-rendering", "markdown"])):
        result = CliRunner().invoke(app, [*args, "--seed", str(data), "-o", str(tmp_path / data.stem), *option])
        assert result.exit_code == 0, result.output
    alone, joined = ([u for u in units if u.stage == "chunk"] for units in trained)
    assert all(u.rendering is None for u in alone) and [u for u in joined if u.rendering is None] == alone
    assert sorted(u.source for u in joined if u.rendering == "markdown") == sorted(u.source for u in alone)
    misspelled = CliRunner().invoke(
        app, [*args, "--seed", str(both), "-o", str(tmp_path / "x"), "--also-rendering", "md"]
    )
    assert misspelled.exit_code == 2 and "holds no example in md" in " ".join(misspelled.output.split())


def test_with_plain_markup_training_reads_markdown_as_its_text(config, tmp_path):
    from proxkit.train.seed import Example

    markdown = ["## Lanes", "[Home](/) | [About](/about)", "The council **approved** the [lanes](http://x.org/a)."]
    plain = ["Lanes", "Home | About", "The council approved the lanes."]
    pages = [
        Example(name, name, "chunk", lines, [True, True, False]) for name, lines in (("md", markdown), ("p", plain))
    ]
    reading = TaggerConfig(**{**config.__dict__, "plain_markup": True})
    store = tagger.StateStore(tmp_path / "states", reading)
    assert store.read_lines(pages[0]) == plain
    read_markdown, read_plain = store.all(pages)
    assert torch.allclose(read_markdown, read_plain, atol=1e-5)
    as_is = tagger.StateStore(tmp_path / "states", config)
    assert as_is.read_lines(pages[0]) == markdown
    assert not torch.allclose(*as_is.all(pages), atol=1e-3)


def test_with_a_chunk_budget_training_reads_each_chunk_as_the_writer_does(config, tmp_path):
    from proxkit.models.tagger import _read_prompt
    from proxkit.program import Mode
    from proxkit.train.seed import Example
    from proxkit.writing import chunk_prompts

    reading = TaggerConfig(**{**config.__dict__, "plain_markup": True})
    links = [f"[Link {i}](/l{i}) and [more](/m{i})" for i in range(6)]
    lines = links + ["## Section", "The **council** voted _yes_."] * 12  # links in the first chunk only
    page = Example("p", "p", "chunk", lines, [False] * len(lines))
    store = tagger.StateStore(tmp_path / "states", reading, chunk_budget=120)
    tokenizer = tagger.prompt_tokenizer(reading)
    prompts = chunk_prompts("\n".join(lines), tokenizer, Mode.STRICT, 120, 100_000, 64, content_only=True).prompts
    at_run_time = [
        line for prompt in prompts for line in _read_prompt(tokenizer.decode(prompt.ids), reading).read.pieces
    ]
    assert len(prompts) > 1 and store.read_lines(page) == at_run_time
    assert at_run_time[0] == "Link 0 and more" and at_run_time[-1] == "The **council** voted _yes_."
