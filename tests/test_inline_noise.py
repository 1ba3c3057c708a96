import random
import re

import pytest

from proxkit.annotate.human import chunk_example
from proxkit.inline_noise import (
    MAX_PIECE_CALLS,
    apply_normalize,
    noise_sources,
    normalize_calls,
    piece_calls,
    with_normalize,
    word_spans,
    words,
)
from proxkit.program import Normalize, Program, Stage, execute_chunk, parse_program

ARTICLE = "The council approved the new budget for the city library on Tuesday evening after a long debate."
SECOND = "Members said the money would pay for longer opening hours and more books for children."


def normalize_sources(program: str) -> list[str]:
    return [call.source for call in parse_program(program, Stage.CHUNK).calls if isinstance(call, Normalize)]


def test_word_spans_locate_each_word_and_refuse_what_nfkc_splits():
    line = "Café «open» 24/7 —東京"
    spans = word_spans(line)
    assert [line[start:end].casefold() for start, end in spans] == words(line)
    assert word_spans("Take ½ cup") is None  # NFKC makes '½' the words 1 and 2


def test_noise_at_a_lines_end_start_and_middle_becomes_sources_that_leave_one_space():
    line = "Posted by admin | The council met. Advertisement — Members voted. Share this: Facebook Twitter"
    noise = [
        word in {"posted", "by", "admin", "advertisement", "share", "this", "facebook", "twitter"}
        for word in words(line)
    ]
    sources = noise_sources(line, noise)
    assert sources == ["Posted by admin | ", " Advertisement —", " Share this: Facebook Twitter"]
    assert apply_normalize([line], [Normalize(s) for s in sources]) == ["The council met. Members voted."]


def test_sources_must_be_specific_and_short():
    assert noise_sources("The council met. Ad", [False, False, False, True]) == []  # too short
    sentence = "Read our long promotional paragraph about services that goes on for many more words here"
    line = f"The council met. {sentence}"
    assert noise_sources(line, [False] * 3 + [True] * len(words(sentence))) == []  # a sentence, not a label
    assert noise_sources("Updated: December 9, 2024If you", [True] * 5 + [False]) == []  # words run together


def test_the_importer_writes_normalize_for_noise_inside_a_content_line_and_runs_clean():
    lines = ["Home | News | Sport", f"{ARTICLE} Share this: Facebook Twitter", SECOND, "Copyright 2024"]
    gold = f"{ARTICLE}\n{SECOND}"
    example = chunk_example("t/1", "t", "t", lines, gold)
    assert example.labels == [0, 1, 1, 0]
    assert normalize_sources(example.program) == [" Share this: Facebook Twitter"]
    result = execute_chunk("\n".join(lines), example.program)
    assert not result.errors
    assert words(result.text) == words(gold)


def test_no_call_whose_source_also_sits_inside_content():
    # "Read more" ends one line as a link, and is part of a sentence the gold keeps
    first = f"{ARTICLE} Read more here"
    content = "Read more here about the budget, the council said in a statement to the press."
    lines = [first, SECOND, content]
    example = chunk_example("t/2", "t", "t", lines, f"{ARTICLE}\n{SECOND}\n{content}")
    assert normalize_sources(example.program) == []


def test_no_call_for_a_word_an_extractor_split():
    lines = [f"{ARTICLE} Small business es", SECOND]
    gold = f"{ARTICLE} Small businesses\n{SECOND}"
    assert normalize_sources(chunk_example("t/3", "t", "t", lines, gold).program) == []


@pytest.mark.parametrize("broken", ["M a ster G a rdener", "editionÂ"])
def test_no_call_for_words_an_extractor_spaced_out_or_garbled(broken):
    lines = [f"{ARTICLE} {broken}", SECOND]
    gold = f"{ARTICLE} Master Gardener edition\n{SECOND}"
    assert normalize_sources(chunk_example("t/4", "t", "t", lines, gold).program) == []


def test_calls_leave_removed_lines_alone_and_keep_chunk_goes():
    lines = ["Menu Home", f"{ARTICLE} Share this: Facebook Twitter", "Share this: Facebook Twitter"]
    removed = [True, False, True]
    noise = [None, [False] * len(words(ARTICLE)) + [True] * 4, None]
    calls = normalize_calls(lines, removed, noise)
    assert calls == [Normalize(" Share this: Facebook Twitter")]
    program = with_normalize(Program.removing(removed), calls)
    assert program.render().splitlines() == [
        "remove_lines(line_start=0, line_end=0)",
        "remove_lines(line_start=2, line_end=2)",
        'normalize(source_str=" Share this: Facebook Twitter", target_str="")',
    ]
    assert with_normalize(Program.removing([False]), calls).render().startswith("normalize(")


def test_random_noise_flags_give_calls_that_delete_noise_words_only():
    rng = random.Random(7)
    vocabulary = [
        "share",
        "this",
        "read",
        "more",
        "the",
        "council",
        "budget",
        "library",
        "pages",
        "print",
        "email",
        "2024",
        "views",
        "comments",
    ]
    for _ in range(300):
        lines = [
            " ".join(rng.choice(vocabulary) + rng.choice(["", ",", ".", " |"]) for _ in range(rng.randint(2, 12)))
            for _ in range(rng.randint(1, 6))
        ]
        removed = [rng.random() < 0.2 for _ in lines]
        noise = [[rng.random() < 0.3 for _ in words(line)] for line in lines]
        calls = normalize_calls(lines, removed, noise)
        kept = [(line, flags) for line, gone, flags in zip(lines, removed, noise, strict=True) if not gone]
        result = execute_chunk("\n".join(line for line, _ in kept), Program(tuple(calls)), guards=_loose())
        assert not result.errors
        content = [w for line, flags in kept for w, is_noise in zip(words(line), flags, strict=True) if not is_noise]
        left = words(result.text)
        assert _is_subsequence(content, left) and len(left) >= len(content)


def test_removed_pieces_of_a_line_of_lines_go_unless_their_text_is_also_kept():
    lines = [f"Menu\rHome\r{ARTICLE}\r\rShare this\r", f"Home\r{SECOND}\u2028Print page", "Menu\rHome\rgone"]
    pieces = [[True, True, False, True], [True, False, True], None]
    calls = piece_calls(lines, [False, False, True], pieces)
    assert {call.source for call in calls} == {"Menu\rHome\r", "\r\rShare this", "\u2028Print page", "Home\r"}
    assert calls[-1].source == "Home\r"  # after the longer run it sits in
    # the line's own last break stays; "Home\r" also sits inside a longer removed run: deleted there first
    assert apply_normalize(lines[:2], calls) == [f"{ARTICLE}\r", SECOND]
    # a piece kept in one place and removed in another goes with the kept piece beside it as context
    kept_twice = [f"Menu\r{ARTICLE}", f"{SECOND}\rMenu\rmore", "Last words\rMenu"]
    calls = piece_calls(kept_twice, [False, False, False], [[True, False], [False, False, False], [False, True]])
    assert calls == [Normalize(f"Menu\r{ARTICLE}", ARTICLE), Normalize("Last words\rMenu", "Last words")]
    assert apply_normalize(kept_twice, calls) == [ARTICLE, f"{SECOND}\rMenu\rmore", "Last words"]
    ambiguous = [f"Menu\r{ARTICLE}", f"Menu\r{ARTICLE}", f"{SECOND}\rMenu", f"{SECOND}\rMenu\rmore"]
    flags = [[True, False], [False, False], [False, True], [False, False, False]]  # the same text kept elsewhere
    assert piece_calls(ambiguous, [False] * 4, flags) == []
    assert piece_calls([ARTICLE], [False], [[False]]) == []
    assert piece_calls([f"Menu\r{ARTICLE}"], [False], [[True, False, True]]) == []  # not one flag per piece


def test_random_pieces_lose_only_removed_pieces():
    rng = random.Random(11)
    vocabulary = ["Menu", "Reply", "Share this", "Advertisement", "The council met.", "Books for all.", "2024"]
    for _ in range(400):
        lines, flags = [], []
        for _ in range(rng.randint(1, 3)):
            pieces = [rng.choice(vocabulary) for _ in range(rng.randint(2, 8))]
            lines.append(rng.choice(["\r", "\u2028"]).join(pieces))
            flags.append([rng.random() < 0.4 for _ in pieces])
        calls = piece_calls(lines, [False] * len(lines), flags)
        result = execute_chunk("\n".join(lines), Program(tuple(calls)), guards=_loose())
        assert not result.errors
        for line, line_flags, left in zip(lines, flags, result.text.split("\n"), strict=True):
            pieces = re.split("[\r\u2028]", line)
            kept = [piece for piece, gone in zip(pieces, line_flags, strict=True) if not gone]
            assert _is_subsequence(kept, re.split("[\r\u2028]", left)), (line, line_flags, left)
            assert _is_subsequence(words(left), words(line))


def test_piece_calls_stop_at_their_bound_and_keep_every_kept_piece():
    pieces = [text for i in range(600) for text in (f"Share item {i:03d}", f"Kept sentence {i:03d}.")]
    calls = piece_calls(["\r".join(pieces)], [False], [[i % 2 == 0 for i in range(len(pieces))]])
    assert len(calls) == MAX_PIECE_CALLS
    (left,) = apply_normalize(["\r".join(pieces)], calls)
    assert all(f"Kept sentence {i:03d}." in left for i in range(600)) and left.count("Share item") == 100


def _loose():
    from proxkit.program import Guards

    return Guards(min_word_ratio=0.0, min_words=0, max_errors=None)


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(word == other for other in it) for word in needle)
