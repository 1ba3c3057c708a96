"""The text statistics a doc probe reads beside its pooled line states."""

import json
import math
from dataclasses import asdict

import pytest
import torch

from proxkit.models.doc_statistics import DOCUMENT_STATISTICS, document_statistics, line_counts
from proxkit.models.options import TAGGER_CONFIG
from proxkit.models.tagger import FEATURES_VERSION, TaggerConfig, TaggerHeads, line_surface

PROSE = "The council said that the new library will open in the spring, and it will not cost more."
MENU = "Home | Products | Contact"


def test_a_line_of_prose_and_a_menu_line_count_what_a_reader_sees():
    prose, menu = line_counts(PROSE), line_counts(MENU)
    assert (prose["words"], prose["terminal"], prose["short"]) == (18, 1.0, 0.0)
    assert prose["function_words"] == 11 and menu["function_words"] == 0
    assert (menu["words"], menu["letter_words"], menu["terminal"]) == (5, 3, 0.0)  # two separators
    assert line_counts("Read more")["short"] == 1.0 and line_counts("• one item")["listed"] == 1.0
    assert line_counts("2024-01-05 10:30")["digits"] == 12 and line_counts("Wait... #tag")["marks"] == 2
    assert line_counts(PROSE, repeated=True)["repeated"] == 1.0 and line_counts("")["words"] == 0


def test_the_statistics_describe_the_lines_weighted_as_content():
    lines = [MENU, PROSE, PROSE]
    prose = document_statistics(lines, torch.tensor([0.0, 1.0, 1.0]))
    assert prose.shape == (DOCUMENT_STATISTICS,)
    assert prose[1].item() == pytest.approx(11 / 18)  # function words among the content words
    assert prose[6].item() == 1.0 and prose[8].item() == 0.0  # every content line ends a sentence, none short
    assert prose[9].item() == pytest.approx(0.5)  # one of the two content lines repeats the other
    assert prose[10].item() == pytest.approx(18)  # words per line
    assert prose[11].item() == pytest.approx(math.log1p(36)) and prose[12].item() == pytest.approx(math.log1p(2))
    menu = document_statistics(lines, torch.tensor([1.0, 0.0, 0.0]))
    assert menu[1].item() == 0.0 and menu[2].item() == pytest.approx(0.6) and menu[6].item() == 0.0
    half = document_statistics(lines, torch.tensor([1.0, 1.0, 0.0]))
    assert half[1].item() == pytest.approx(11 / 23)  # words weigh, not lines: 11 of the 5 + 18 words
    assert document_statistics([], torch.zeros(0)).tolist() == [0.0] * DOCUMENT_STATISTICS
    assert document_statistics(lines, torch.zeros(3)).tolist() == [0.0] * DOCUMENT_STATISTICS  # nothing kept
    with pytest.raises(ValueError, match="2 lines but 1 content weights"):
        document_statistics([MENU, PROSE], torch.ones(1))


def test_a_probe_with_statistics_reads_the_text_of_the_lines_it_pools():
    config = TaggerConfig("unused", depth=2, layers=(1, 2), hidden_size=4, doc_statistics=True)
    heads = TaggerHeads.for_config(config)
    assert heads.doc.linear.in_features == config.features + DOCUMENT_STATISTICS
    states = torch.randn(3, config.features)
    texts = [MENU, PROSE, PROSE, "a line past the window the states cover"]
    content = 1 - torch.sigmoid(heads.line_logits(states))
    pooled = heads.pooled(states, texts=texts)
    assert torch.allclose(pooled[: config.features], heads.doc.pool(states, content))
    assert torch.allclose(pooled[config.features :], document_statistics(texts[:3], content))
    assert heads(states, texts)[1].shape == ()
    with pytest.raises(ValueError, match="reads the text"):
        heads.pooled(states)
    plain = TaggerHeads.for_config(TaggerConfig("unused", depth=2, layers=(1, 2), hidden_size=4))
    assert plain.pooled(states).shape == (config.features,)  # without statistics the text is not needed


FEATURE_LINES = [MENU, PROSE, "\u00a9 2024 Example Ltd. 12 items \u2022 Read more", PROSE]


def test_the_text_features_are_those_of_features_version_1():
    """If this fails, the features changed: bump `FEATURES_VERSION`, retrain the bundled heads, update here."""
    assert FEATURES_VERSION == 1
    statistics = document_statistics(FEATURE_LINES, torch.tensor([0.2, 0.9, 0.5, 0.7]))
    expected = [3.9475, 0.5277, 0.93, 0.0, 0.0179, 0.0221, 0.6957, 0.0, 0.0, 0.3043, 14.913, 3.5639, 1.1939]
    assert statistics.tolist() == pytest.approx(expected, abs=1e-4)
    surface = line_surface(FEATURE_LINES)
    assert surface[2].tolist() == pytest.approx([0.7675, 0.7427, 0, 0, 0.575, 0.15, 0.075, 0, 1, 0.6667], abs=1e-4)
    assert surface[:, 9].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_a_tagger_trained_on_other_text_features_does_not_load(tmp_path):
    config = TaggerConfig("unused", depth=2, layers=(1, 2), hidden_size=4, doc_statistics=True)
    assert config.features_version == FEATURES_VERSION
    settings = asdict(config)
    del settings["features_version"]  # as written before the field existed: version 1
    (tmp_path / TAGGER_CONFIG).write_text(json.dumps(settings))
    assert TaggerConfig.load(tmp_path).features_version == 1
    (tmp_path / TAGGER_CONFIG).write_text(json.dumps(settings | {"features_version": FEATURES_VERSION + 1}))
    with pytest.raises(ValueError, match=rf"{TAGGER_CONFIG}: heads trained on text features version"):
        TaggerConfig.load(tmp_path)
    plain = settings | {"doc_statistics": False, "features_version": FEATURES_VERSION + 1}
    (tmp_path / TAGGER_CONFIG).write_text(json.dumps(plain))
    assert not TaggerConfig.load(tmp_path).doc_statistics  # heads without text features load anyway
