"""The line tagger: segmenting lines, heads, rendering programs, and writing them from ProX prompts."""

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from proxkit.inline_noise import words
from proxkit.layout import word_pieces
from proxkit.models import resolve
from proxkit.models.doc_statistics import DOCUMENT_STATISTICS, document_statistics
from proxkit.models.options import is_tagger
from proxkit.models.tagger import (
    HEADS_FILE,
    SURFACE_FEATURES,
    Backbone,
    DocProbe,
    TaggerConfig,
    TaggerHeads,
    TaggerWriter,
    canonical_device,
    doc_prompt_lines,
    line_surface,
    per_line_means,
)
from proxkit.models.tokenizers import load_tokenizer
from proxkit.program import Stage, parse_program
from proxkit.prompts import chunk_document, chunk_prompt_ids, doc_prompt_ids, line_cost, number_line

LINES = ["Home | About | Contact", "The council approved the lanes on Tuesday.", "", "Copyright 2024"]


@pytest.fixture(scope="module")
def config(tiny_backbone):
    return TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32, max_line_tokens=8)


@pytest.fixture(scope="module")
def backbone(config):
    return Backbone(config)


def write_tagger(directory, config, line_bias: float, doc_bias: float):
    heads = TaggerHeads.for_config(config)
    with torch.no_grad():
        heads.line.weight.zero_()
        heads.line.bias.fill_(line_bias)
        heads.doc.linear.weight.zero_()
        heads.doc.linear.bias.fill_(doc_bias)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(heads.state_dict(), str(directory / HEADS_FILE))
    config.save(directory)
    return directory


def test_config_is_validated():
    with pytest.raises(ValueError, match="layers"):
        TaggerConfig(base="x", depth=4, layers=(2, 6))
    with pytest.raises(ValueError, match="line_threshold"):
        TaggerConfig(base="x", line_threshold=1.0)
    with pytest.raises(ValueError, match="needs a line_threshold"):
        TaggerConfig(base="x", line_threshold=None)


def test_each_line_piece_is_numbered_cut_and_ends_with_a_newline(backbone, config):
    pieces = backbone.pieces([*LINES, "word " * 50], first_number=7)
    assert len(pieces) == len(LINES) + 1
    assert all(piece[-1] == backbone.newline[-1] for piece in pieces)
    assert max(len(piece) for piece in pieces) == config.max_line_tokens  # the long line is cut
    assert backbone.tokenizer.decode(pieces[0]).startswith("[007]Home")


def test_windows_never_exceed_the_forward_pass_and_cover_every_line(tiny_backbone, config):
    small = Backbone(TaggerConfig(**{**config.__dict__, "max_tokens": 24}))
    lines = [f"Line {i} of a page about trains." for i in range(12)]
    pieces = small.pieces(lines)
    windows = small.windows(pieces)
    assert len(windows) > 1
    assert [start for start, _ in windows[1:]] == [end for _, end in windows[:-1]] and windows[-1][1] == 12
    for start, end in windows:
        assert end - start == 1 or 1 + sum(len(p) for p in pieces[start:end]) <= 24
    states = small.line_states(lines)
    assert states.shape == (12, config.features)
    assert small.line_states(lines, first_window_only=True).shape == (windows[0][1], config.features)
    assert Backbone(config).line_states([]).shape == (0, config.features)


def test_batched_passes_give_the_states_of_passes_run_one_by_one(tiny_backbone, config):
    """Right-padded batches of windows of several documents (sorted by length, so an item's windows are
    split across batches) give each document the states of its windows run alone, in line order."""
    small = Backbone(TaggerConfig(**{**config.__dict__, "max_tokens": 24}))
    items = [
        ([f"Line {i} of a page about trains." for i in range(12)], 0, False),
        (["Home | About", "Contact"], 40, False),
        ([f"Doc line {i}." for i in range(9)], 0, True),
        ([], 0, False),
    ]
    batched = small.batch_line_states(items, max_batch_tokens=4096)
    alone = [small.batch_line_states([item], max_batch_tokens=1)[0] for item in items]
    assert [len(states) for states in batched] == [12, 2, small.windows(small.pieces(items[2][0]))[0][1], 0]
    for mine, reference in zip(batched, alone, strict=True):
        assert torch.allclose(mine, reference, atol=1e-4)


def test_heads_score_every_line_and_the_document(config):
    line_logits, doc_logit = TaggerHeads(config.features, 16)(torch.randn(5, config.features))
    assert line_logits.shape == (5,) and doc_logit.shape == ()
    assert TaggerHeads(config.features, 16).line_logits(torch.zeros(0, config.features)).shape == (0,)


def test_surface_features_describe_each_line_on_its_own():
    surface = line_surface(["Home | About | Contact", "The council approved the lanes.", "", "2024"])
    assert surface.shape == (4, SURFACE_FEATURES) and line_surface([]).shape == (0, SURFACE_FEATURES)
    words, chars, c4_rule, terminal, letters, digits, capitals, leading, separator, position = surface.T.tolist()
    assert c4_rule == [0.0, 1.0, 0.0, 0.0] and terminal == [0.0, 1.0, 0.0, 0.0]
    assert separator == [1.0, 0.0, 0.0, 0.0] and leading == [1.0, 1.0, 0.0, 0.0]
    assert digits[3] == 1.0 and letters[3] == 0.0 and words[2] == chars[2] == 0.0
    assert words[0] == words[1] > words[3] and capitals[0] == pytest.approx(3 / 22)
    assert position == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0]) and line_surface(["2024"])[0, -1] == 0.0
    assert torch.equal(line_surface(["2024"])[:, :-1], surface[3:, :-1])  # the rest: the line's own


def test_heads_read_surface_columns_after_the_line_states(config):
    surfaced = TaggerConfig(**{**config.__dict__, "surface": True})
    states = torch.randn(4, config.features)
    inputs = surfaced.head_inputs(states, LINES)
    assert torch.equal(inputs[:, : config.features], states)
    assert torch.equal(inputs[:, config.features :], line_surface(LINES))
    assert config.head_inputs(states, LINES) is states  # without surface: the states as they are
    heads = TaggerHeads.for_config(surfaced)
    assert heads.doc.linear.in_features == config.features + SURFACE_FEATURES
    changed = inputs.clone()
    changed[:, config.features :] = 0.0
    with torch.no_grad():
        assert not torch.allclose(heads.line_logits(inputs), heads.line_logits(changed))
        assert heads(inputs)[1].shape == ()


@pytest.mark.parametrize("reach", ["conv", "attention", "recurrent"])
def test_with_attention_or_a_gru_a_line_is_judged_by_lines_beyond_the_convolutions_reach(config, reach):
    states = torch.randn(8, config.features)
    far = states.clone()
    far[0] = torch.randn(config.features)  # six lines before the last: outside the conv's two lines on each side
    torch.manual_seed(0)
    heads = TaggerHeads(config.features, 16, attention=reach == "attention", recurrent=reach == "recurrent").eval()
    with torch.no_grad():
        last, moved = heads.line_logits(states)[-1], heads.line_logits(far)[-1]
    assert torch.isclose(last, moved) == (reach == "conv")


def test_options_of_the_line_head_come_from_the_config(config):
    assert TaggerHeads.for_config(TaggerConfig(**{**config.__dict__, "attention": True})).attention is not None
    assert TaggerHeads.for_config(TaggerConfig(**{**config.__dict__, "recurrent": True})).recurrent is not None
    assert TaggerHeads.for_config(config).recurrent is None and TaggerHeads.for_config(config).attention is None
    with pytest.raises(ValueError, match="divisible by 4"):
        TaggerConfig(**{**config.__dict__, "attention": True, "width": 18})


def test_the_doc_probe_reads_the_lines_weighted_by_how_likely_they_are_content(config):
    lines = torch.tensor([[1.0, 0.0], [0.0, 4.0], [3.0, 3.0]])
    assert torch.allclose(DocProbe.pool(lines, torch.tensor([1.0, 0.0, 1.0])), torch.tensor([2.0, 1.5]))
    assert torch.allclose(DocProbe.pool(lines, torch.ones(3)), lines.mean(dim=0))
    assert DocProbe.pool(torch.zeros(0, 2), torch.zeros(0)).tolist() == [0.0, 0.0]
    heads = TaggerHeads(config.features, 16)
    with torch.no_grad():
        heads.line.weight.zero_()
        heads.line.bias.fill_(-20.0)  # every line is content: the plain mean
    states = torch.randn(4, config.features)
    assert torch.allclose(heads.pooled(states), states.mean(dim=0), atol=1e-5)


@pytest.mark.parametrize(("line_bias", "doc_bias"), [(10.0, 10.0), (-10.0, -10.0)])
def test_the_writer_reads_prox_prompts_and_writes_valid_programs(tmp_path, config, line_bias, doc_bias):
    directory = write_tagger(tmp_path / "tagger", config, line_bias, doc_bias)
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(directory, tokenizer)
    text = "\n".join(LINES * 3)
    chunks = chunk_document(text, line_cost(tokenizer), budget=40)
    assert len(chunks) > 1
    prompts = [chunk_prompt_ids(chunk.text, tokenizer).ids for chunk in chunks] + [doc_prompt_ids(text, tokenizer).ids]
    generations = writer.generate(prompts, max_new_tokens=1)
    for chunk, generation in zip(chunks, generations, strict=False):
        program = parse_program(generation.text, Stage.CHUNK)
        assert program.errors == ()
        expected = f"remove_lines(line_start={chunk.first_line}, line_end={chunk.last_line})"
        assert generation.text == (expected if line_bias > 0 else "keep_chunk()")
    assert generations[-1].text == ("drop_doc()" if doc_bias > 0 else "keep_doc()")


def test_a_tagger_with_doc_piece_words_reads_a_documents_long_lines_in_pieces(tmp_path, config):
    pieced = replace(config, doc_piece_words=3, doc_statistics=True)
    directory = write_tagger(tmp_path / "tagger", pieced, -10.0, -10.0)
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(directory, tokenizer)
    read, batch_line_states = [], writer.backbone.batch_line_states
    writer.backbone.batch_line_states = lambda items, tokens: read.extend(items) or batch_line_states(items, tokens)
    pooled, pool = [], writer.heads.pooled
    writer.heads.pooled = lambda states, **text: pooled.append(text) or pool(states, **text)
    text = "Home | About\nThe council met on Tuesday evening."
    prompts = [
        doc_prompt_ids(text, tokenizer).ids,
        chunk_prompt_ids("[000]" + text.replace("\n", "\n[001]"), tokenizer).ids,
    ]
    doc, chunk = writer.generate(prompts, max_new_tokens=1)
    assert read[0][0] == ["Home | About", "The council met", "on Tuesday evening."] and read[0][2]  # first window
    assert read[1][0] == ["Home | About", "The council met on Tuesday evening."]  # chunk lines stay whole
    assert doc.text == "keep_doc()" and chunk.text == "keep_chunk()"
    # the statistics are of the document's lines, each piece counted toward its line
    assert pooled == [{"texts": ["Home | About", "The council met on Tuesday evening."], "origins": [0, 1, 1]}]


def test_the_statistics_of_a_document_read_in_pieces_are_of_its_lines(config):
    heads = TaggerHeads.for_config(replace(config, doc_statistics=True))
    lines = ["Home | About", "The council met on Tuesday evening."]
    pieces = word_pieces(lines, 3)
    states = torch.randn(len(pieces.pieces), config.features)
    with torch.no_grad():
        statistics = heads.pooled(states, texts=lines, origins=pieces.origins)[-DOCUMENT_STATISTICS:]
        content = 1.0 - torch.sigmoid(heads.line_logits(states))
    per_line = torch.stack([content[0], (content[1] + content[2]) / 2])
    assert torch.allclose(per_line_means(content, pieces.origins), per_line)
    assert torch.allclose(statistics, document_statistics(lines, per_line))
    assert not torch.allclose(statistics, document_statistics(pieces.pieces, content))  # 1 of 3 lines ends a sentence
    assert torch.equal(per_line_means(torch.tensor([1.0, 2.0, 4.0]), [0, 1, 1]), torch.tensor([1.0, 3.0]))


def test_a_surface_tagger_reads_the_text_of_the_prompts_lines(tmp_path, config):
    surfaced = TaggerConfig(**{**config.__dict__, "surface": True, "width": 8})
    heads = TaggerHeads.for_config(surfaced)
    with torch.no_grad():  # a line head that reads only the separator feature: remove a line with one
        for parameter in heads.parameters():
            parameter.zero_()
        heads.project[0].weight.fill_(1.0)
        heads.surface[0].weight[0, SURFACE_FEATURES - 2] = 10.0
        heads.line.weight[0, 0] = 1.0
        heads.line.bias.fill_(-5.0)
    directory = tmp_path / "surfaced"
    directory.mkdir()
    save_file(heads.state_dict(), str(directory / HEADS_FILE))
    surfaced.save(directory)
    tokenizer = load_tokenizer(config.base)
    prompt = chunk_prompt_ids("[003]The council met.\n[004]Home | About\n[005]It voted.", tokenizer).ids
    [generation] = TaggerWriter(directory, tokenizer).generate([prompt], max_new_tokens=1)
    assert generation.text == "remove_lines(line_start=4, line_end=4)"


def test_a_chunk_prompt_without_numbered_lines_keeps_its_chunk_beside_others(tmp_path, config):
    directory = write_tagger(tmp_path / "tagger", config, 10.0, 10.0)
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(directory, tokenizer)
    empty = chunk_prompt_ids("", tokenizer).ids
    lines = chunk_prompt_ids("[000]Home | About", tokenizer).ids
    assert [g.text for g in writer.generate([empty, lines], max_new_tokens=1)] == [
        "keep_chunk()",
        "remove_lines(line_start=0, line_end=0)",
    ]


def test_a_document_that_opens_with_a_doc_line_is_judged_as_a_document(tmp_path, config):
    directory = write_tagger(tmp_path / "tagger", config, 10.0, 10.0)
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(directory, tokenizer)
    texts = ["[doc]\nThe council approved the lanes.\nMore text.", "[doc]\n[000]Home\n[/doc] and after"]
    generations = writer.generate([doc_prompt_ids(text, tokenizer).ids for text in texts], 1)
    assert [g.text for g in generations] == ["drop_doc()", "drop_doc()"] and all(g.score for g in generations)


FINNISH = [
    "Kirjasto avattiin lauantaina, ja se on nyt auki kaikille kun sää on hyvä.",
    "Jaa Facebookissa",
    "Hän sanoi että se oli myös hyvä, mutta ei niin kuin ennen.",
]


def test_chunks_outside_the_taggers_languages_get_the_c4_rules_program_and_say_so(tmp_path, config):
    english = TaggerConfig(**{**config.__dict__, "languages": ("en",)})
    directory = write_tagger(tmp_path / "tagger", english, -10.0, -10.0)  # its head keeps every line
    assert TaggerConfig.load(directory).languages == ("en",)
    tokenizer = load_tokenizer(config.base)
    finnish = chunk_prompt_ids("\n".join(number_line(i, line) for i, line in enumerate(FINNISH)), tokenizer).ids
    page = chunk_prompt_ids("\n".join(number_line(i, line) for i, line in enumerate(LINES)), tokenizer).ids
    writer = TaggerWriter(directory, tokenizer)
    read = []
    real = writer.backbone.batch_line_states
    writer.backbone.batch_line_states = lambda items, *a: read.extend(items) or real(items, *a)
    fallback, head = writer.generate([finnish, page], max_new_tokens=1)
    assert [lines for lines, _, _ in read] == [[line for line in LINES if line]]  # the backbone skips the fallback
    assert fallback.text == "remove_lines(line_start=1, line_end=1)" and fallback.note == "c4_line_rule: fi"
    assert head.text == "keep_chunk()" and head.note is None  # English, or too little to tell: the head
    marks = SimpleNamespace(noise_probabilities=lambda lines: [[1.0, 1.0] + [0.0] * (len(words(x)) - 2) for x in lines])
    writer.word_head, writer.config.word_threshold = marks, 0.5  # each line's first words: noise, not read here
    assert [g.text for g in writer.generate([finnish], max_new_tokens=1)] == [fallback.text]
    everywhere = write_tagger(tmp_path / "everywhere", config, -10.0, -10.0)  # languages None: the head always
    [generation] = TaggerWriter(everywhere, tokenizer).generate([finnish], max_new_tokens=1)
    assert generation.text == "keep_chunk()" and generation.note is None


TITLE = ' "Read the whole story about the opening of the library and what the people of the town said about it"'
FINNISH_MARKDOWN = [
    "**Kirjasto avattiin lauantaina, ja se on nyt auki kaikille.**",
    f"[Jaa Facebookissa](https://www.facebook.com/sharer{TITLE})",
    f"Hän sanoi että se oli [myös hyvä](https://example.com/news{TITLE}), mutta ei niin kuin ennen.",
]


def test_the_language_and_the_rule_of_markdown_read_its_text_not_its_link_titles(tmp_path, config):
    tokenizer = load_tokenizer(config.base)
    chunk = chunk_prompt_ids("\n".join(number_line(i, line) for i, line in enumerate(FINNISH_MARKDOWN)), tokenizer)
    document = doc_prompt_ids("\n".join(FINNISH_MARKDOWN), tokenizer)
    written, english = {}, {**config.__dict__, "languages": ("en",)}
    for plain in (False, True):
        tagger = TaggerConfig(**{**english, "plain_markup": plain})
        directory = write_tagger(tmp_path / str(plain), tagger, -10.0, -10.0)
        written[plain] = TaggerWriter(directory, tokenizer).generate([chunk.ids, document.ids], max_new_tokens=1)
    assert [g.note for g in written[False]] == [None, None]  # as it is, the link titles read as English
    assert [g.note for g in written[True]] == ["c4_line_rule: fi", "kept_unjudged: fi"]
    assert written[True][0].text == "remove_lines(line_start=1, line_end=1)"  # the bold sentence is kept


FINNISH_ARTICLE = " ".join(FINNISH[0::2] * 4)


def test_documents_outside_the_taggers_languages_are_kept_unjudged_and_a_refine_run_says_so(tmp_path, config):
    from typer.testing import CliRunner

    from proxkit.cli import app
    from proxkit.run import read_records

    english = TaggerConfig(**{**config.__dict__, "languages": ("en",)})
    directory = write_tagger(tmp_path / "tagger", english, -10.0, 10.0)  # drops every document it judges
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(directory, tokenizer)
    finnish, page = (doc_prompt_ids(text, tokenizer).ids for text in (FINNISH_ARTICLE, "\n".join(LINES)))
    unjudged, judged = writer.generate([finnish, page], max_new_tokens=1)
    assert unjudged.text == "keep_doc()" and unjudged.note == "kept_unjudged: fi" and unjudged.score is None
    assert judged.text == "drop_doc()" and judged.note is None and judged.score == 1.0
    corpus = tmp_path / "corpus.jsonl"
    texts = {"fi": "\n".join([FINNISH_ARTICLE, *FINNISH]), "en": "\n".join(LINES)}
    corpus.write_text("".join(json.dumps({"id": name, "text": text}) + "\n" for name, text in texts.items()))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["refine", str(corpus), "-o", str(out), "--doc-model", str(directory), "--chunk-model", str(directory),
              "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [kept], [dropped] = read_records(out / "data"), read_records(out / "dropped")
    assert (kept["id"], dropped["id"]) == ("fi", "en")
    prox = kept["metadata"]["prox"]
    assert prox["doc_stage"]["fallback"] == 1 and prox["chunk_stage"]["fallback_chunks"] == 1
    assert dropped["metadata"]["prox"]["doc_stage"]["fallback"] == 0
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["fallback_docs"], stats["fallback_chunks"]) == (1, 1)


def test_the_doc_head_keeps_to_its_own_languages_and_the_line_head_to_its_own(tmp_path, config):
    both = TaggerConfig(**{**config.__dict__, "languages": ("en", "fi"), "doc_languages": ("en",)})
    directory = write_tagger(tmp_path / "tagger", both, -10.0, 10.0)  # keeps every line, drops every document
    assert TaggerConfig.load(directory).doc_languages == ("en",)
    tokenizer = load_tokenizer(config.base)
    writer = TaggerWriter(directory, tokenizer)
    doc = doc_prompt_ids(FINNISH_ARTICLE, tokenizer).ids
    chunk = chunk_prompt_ids("\n".join(number_line(i, line) for i, line in enumerate(FINNISH)), tokenizer).ids
    unjudged, headed = writer.generate([doc, chunk], max_new_tokens=1)
    assert unjudged.text == "keep_doc()" and unjudged.note == "kept_unjudged: fi"
    assert headed.text == "keep_chunk()" and headed.note is None  # fi is one of the line head's languages


def test_a_tagger_directory_is_found_by_the_registry(tmp_path, config):
    directory = write_tagger(tmp_path / "tagger", config, -10.0, -10.0)
    assert is_tagger(directory) and not is_tagger(tmp_path)
    spec = resolve(str(directory), Stage.CHUNK)
    tokenizer = spec.load_tokenizer()
    assert tokenizer.encode("Home") == load_tokenizer(config.base).encode("Home")
    assert isinstance(spec.load_writer(tokenizer), TaggerWriter)
    assert json.loads((directory / "tagger.json").read_text())["depth"] == 4


def test_thresholds_given_to_the_writer_replace_the_directorys(tmp_path, config):
    directory = write_tagger(tmp_path / "tagger", config, 0.0, 0.0)  # every probability is 0.5
    tokenizer = load_tokenizer(config.base)
    prompts = [chunk_prompt_ids("[000]Home | About", tokenizer).ids, doc_prompt_ids("Home | About", tokenizer).ids]
    as_saved = TaggerWriter(directory, tokenizer)  # thresholds 0.5: remove and drop
    assert [g.text for g in as_saved.generate(prompts, 1)] == ["remove_lines(line_start=0, line_end=0)", "drop_doc()"]
    lenient = TaggerWriter(directory, tokenizer, line_threshold=0.6, doc_threshold=0.6)
    assert [g.text for g in lenient.generate(prompts, 1)] == ["keep_chunk()", "keep_doc()"]
    assert TaggerConfig.load(directory).line_threshold == 0.5  # the directory is not changed
    spec = resolve(str(directory), Stage.CHUNK, line_threshold=0.6)
    assert spec.load_writer(tokenizer).config.line_threshold == 0.6


def test_a_threshold_is_refused_for_a_generative_refiner(tiny_refiner):
    with pytest.raises(ValueError, match="line_threshold applies to tagger refiners only"):
        resolve(str(tiny_refiner), Stage.CHUNK, line_threshold=0.6)


def test_layers_after_the_last_one_read_are_not_run_and_the_states_are_the_same(config):
    shallow = TaggerConfig(base=config.base, depth=4, layers=(1, 3), hidden_size=32, max_line_tokens=8)
    every = TaggerConfig(base=config.base, depth=4, layers=(1, 3, 4), hidden_size=32, max_line_tokens=8)
    skipping, full = Backbone(shallow), Backbone(every)
    assert len(skipping.decoder.layers) == 3 and len(full.decoder.layers) == 4
    states, reference = skipping.line_states(LINES), full.line_states(LINES)
    assert torch.allclose(states, reference[:, :64], atol=1e-5)


def test_a_backbone_trains_in_float32_and_runs_in_what_auto_means_on_the_machine(config, monkeypatch):
    from proxkit.models import tagger, writer

    monkeypatch.setattr(writer, "cpu_bfloat16_pays", lambda: True)  # a CPU where bfloat16 was measured faster
    tagger._load_base_decoder.cache_clear()
    tagger._load_decoder.cache_clear()
    try:
        assert Backbone(config).decoder.embed_tokens.weight.dtype is torch.float32  # states heads train on
        running = Backbone(config, dtype="auto")
        assert running.decoder.embed_tokens.weight.dtype is torch.bfloat16
        assert running.line_states(["Home | About", "The council met."]).dtype is torch.float32
        monkeypatch.setattr(writer, "cpu_bfloat16_pays", lambda: False)
        assert Backbone(config, dtype="auto").decoder.embed_tokens.weight.dtype is torch.float32
    finally:
        tagger._load_base_decoder.cache_clear()
        tagger._load_decoder.cache_clear()


def test_backbones_of_one_base_share_its_weights_and_each_gives_its_own_states(config):
    from transformers import AutoModelForCausalLM

    def settings(depth, layers):
        return TaggerConfig(base=config.base, depth=depth, layers=layers, hidden_size=32, max_line_tokens=8)

    deep, shallow = Backbone(settings(4, (2, 4))), Backbone(settings(2, (1, 2)))
    skipping = Backbone(settings(4, (1, 2)))
    assert shallow.decoder.embed_tokens.weight.data_ptr() == deep.decoder.embed_tokens.weight.data_ptr()
    assert shallow.decoder.layers[0] is deep.decoder.layers[0]
    assert [len(b.decoder.layers) for b in (deep, shallow, skipping)] == [4, 2, 2]
    # what a separately loaded model gives: at each line's end, the embeddings and layers 1..4 (4 normed)
    fresh = AutoModelForCausalLM.from_pretrained(config.base).model.eval()
    pieces = deep.pieces(LINES)
    ids = [*deep.bos, *[token for piece in pieces for token in piece]]
    ends = [len(deep.bos) + sum(map(len, pieces[: i + 1])) - 1 for i in range(len(pieces))]
    with torch.no_grad():
        hidden = [state[0, ends] for state in fresh(torch.tensor([ids]), output_hidden_states=True).hidden_states]
        expected = {
            "deep": torch.cat([hidden[2], hidden[4]], -1),
            "shallow": torch.cat([hidden[1], fresh.norm(hidden[2])], -1),  # layer 2 is its last: normed
            "skipping": torch.cat([hidden[1], hidden[2]], -1),
        }
    for _ in range(2):  # in turns: one backbone's passes leave the others' states unchanged
        for name, backbone in (("deep", deep), ("shallow", shallow), ("skipping", skipping)):
            assert torch.allclose(backbone.line_states(LINES), expected[name], atol=1e-5), name
    calls = []  # a hook on one backbone's decoder sees that backbone's passes only
    deep.decoder.register_forward_pre_hook(lambda *_: calls.append("deep"))
    shallow.line_states(LINES), deep.line_states(LINES)
    assert calls == ["deep"]


def test_device_names_of_one_device_are_one_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert canonical_device("cuda") == canonical_device("cuda:1") == "cuda:1"
    assert canonical_device("cuda:0") == "cuda:0"
    assert canonical_device("cpu") == canonical_device(torch.device("cpu")) == "cpu"


def test_the_backbone_and_the_prompts_share_one_loaded_tokenizer(backbone, config):
    assert backbone.tokenizer is load_tokenizer(config.base).hf_tokenizer


def test_doc_prompt_lines_are_the_content_lines_of_the_doc_prompt_in_any_layout(config):
    tokenizer = load_tokenizer(config.base)
    spread = ["Home  |  About", "", "", "The council met.\t ", "  "]
    assert doc_prompt_lines(spread, tokenizer) == doc_prompt_lines(["Home | About", "The council met."], tokenizer)
    assert doc_prompt_lines(spread, tokenizer) == ["Home | About", "The council met."]
    long = ["The council approved the new lanes on Tuesday evening."] * 500
    read = doc_prompt_lines(long, tokenizer)
    assert 0 < len(read) < 500 and read[:-1] == long[: len(read) - 1]  # cut at the prompt's token budget
    pieced = replace(config, doc_piece_words=20)
    pieces = pieced.doc_reading(doc_prompt_lines(["Home | About", " ".join(["word"] * 45)], tokenizer))
    assert pieces.pieces == ["Home | About", " ".join(["word"] * 20), " ".join(["word"] * 20), " ".join(["word"] * 5)]
    assert pieces.origins == [0, 1, 1, 1]
    only_long = replace(pieced, doc_pieces_above=40)  # the 41-word line is cut, the 40-word one read whole
    read = only_long.doc_reading([" ".join(["word"] * 40), " ".join(["word"] * 41)])
    assert read.pieces == [" ".join(["word"] * 40), " ".join(["word"] * 20), " ".join(["word"] * 20), "word"]
    assert config.doc_reading(["a b", "c"]).pieces == ["a b", "c"]  # whole lines by default


def test_with_plain_markup_a_document_in_markdown_is_judged_as_its_text(tmp_path, config):
    config = replace(config, doc_statistics=True)
    torch.manual_seed(0)
    heads = TaggerHeads.for_config(config)  # random heads: every line state and statistic counts
    tokenizer = load_tokenizer(config.base)
    markdown = (
        '# Lanes\n\n* [Home](/) | [About](/about "About us")\n\nThe council **approved** the [lanes](/a). ![](m.png)'
    )
    plain = "Lanes\n* Home | About\nThe council approved the lanes."
    scores = {}
    for plain_markup in (True, False):
        directory = tmp_path / str(plain_markup)
        directory.mkdir()
        save_file(heads.state_dict(), str(directory / HEADS_FILE))
        replace(config, plain_markup=plain_markup).save(directory)
        writer = TaggerWriter(directory, tokenizer)
        generations = writer.generate([doc_prompt_ids(text, tokenizer).ids for text in (markdown, plain)], 1)
        scores[plain_markup] = [generation.score for generation in generations]
    assert scores[True][0] == scores[True][1] == scores[False][1]
    assert scores[False][0] != scores[False][1]


def test_with_plain_markup_the_doc_statistics_count_the_text_markdown_marks_up(config):
    markdown = ["## Lanes", "* [Home](/) | [About](/about)", "The council **approved** the [lanes](http://x.org/a)."]
    plain = ["Lanes", "* Home | About", "The council approved the lanes."]
    states = torch.randn(3, config.features)
    for plain_markup in (True, False):
        heads = TaggerHeads.for_config(replace(config, doc_statistics=True, plain_markup=plain_markup))
        read = [heads.pooled(states, texts=texts)[-DOCUMENT_STATISTICS:] for texts in (markdown, plain)]
        assert torch.equal(*read) is plain_markup
