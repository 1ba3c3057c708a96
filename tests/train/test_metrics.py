"""The refining metrics and the C4 line rule."""

import pytest

from proxkit.train.metrics import F1, accuracy, binary_f1, c4_line_rule, content_word_f1


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
