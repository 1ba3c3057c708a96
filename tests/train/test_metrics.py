"""The refining metrics and the C4 line rule."""

import pytest

from proxkit.train.metrics import F1, accuracy, binary_f1, c4_line_rule, content_word_f1, inline_report


def test_binary_f1_counts_the_positive_class():
    score = binary_f1([True, True, False, False], [True, False, True, False])
    assert (score.precision, score.recall, score.f1) == (0.5, 0.5, 0.5)
    assert binary_f1([False, False], [False, False]) == F1(1.0, 1.0, 1.0)
    assert binary_f1([True], [False]).f1 == 0.0
    with pytest.raises(ValueError):
        binary_f1([True], [True, False])


def test_accuracy():
    assert accuracy([True, False, True], [True, True, True]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy([], [])


def test_content_word_f1_is_a_multiset_overlap_of_words():
    score = content_word_f1("The cat sat. The cat!", "the cat sat on the mat")
    assert score.precision == pytest.approx(4 / 5)  # the, cat, sat, the match; the second "cat" does not
    assert score.recall == pytest.approx(4 / 6)
    assert content_word_f1("", "").f1 == 1.0
    assert content_word_f1("menu", "").f1 == 0.0


def test_c4_line_rule_keeps_sentences_of_three_words_or_more():
    lines = ["Home | About", "The council met on Tuesday.", "Really?", "He said “yes.”", "Read more"]
    assert c4_line_rule(lines) == [False, True, False, True, False]


def test_inline_report_counts_what_normalize_removed_of_content_and_of_noise():
    from proxkit.program import Normalize
    from proxkit.train.seed import Example

    lines = ["Home | News", "The council met on Tuesday. Share this: Facebook", "It voted for the budget."]
    page = Example(
        "p", "s", "chunk", lines, [True, False, False], gold="The council met on Tuesday.\nIt voted for the budget."
    )
    calls = [Normalize(" Share this: Facebook"), Normalize(" budget"), Normalize("absent text")]
    report = inline_report([page], [[True, False, False]], [calls])
    assert report["calls"] == 3 and report["not_found"] == 1
    assert report["noise_words_removed"] == 3  # share, this, facebook
    assert report["content_words_removed"] == 1  # budget
    assert report["content_words_removed_share"] == round(1 / 10, 5)
    assert report["content_word_precision"] == {"without": round(10 / 13, 4), "with": 1.0}
    assert report["content_word_recall"] == {"without": 1.0, "with": 0.9}
