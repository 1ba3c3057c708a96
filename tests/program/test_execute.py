"""The executor: every row of PROX_SPEC §3 in reference mode, and the corrected outcome in strict mode."""

import pytest

from proxkit.program import (
    Bounds,
    DropReason,
    ErrorKind,
    Guards,
    Mode,
    Normalize,
    Program,
    RemoveLines,
    execute,
    execute_chunk,
    execute_doc,
)

REFERENCE, STRICT = Mode.REFERENCE, Mode.STRICT


def sentence(tag: str, words: int = 12) -> str:
    """A line of `words` words whose first word is `tag`."""
    return " ".join([tag, *(f"{tag}w{i}" for i in range(words - 1))])


# Ten lines: 0 and 1 menus, 2..7 content, 8 and 9 footer; 12 words each.
LINES = [sentence(f"L{i}") for i in range(10)]
PAGE = "\n".join(LINES)
NO_GUARDS = Guards(min_word_ratio=0.0, min_words=0, max_errors=None)


def kept_lines(text: str) -> list[int]:
    return [LINES.index(line) for line in text.split("\n")]


def error_kinds(result) -> list[ErrorKind]:
    return [error.kind for error in result.errors]


# --- document stage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [REFERENCE, STRICT])
def test_drop_doc_drops_and_keep_doc_keeps(mode):
    dropped = execute_doc(PAGE, "drop_doc()", mode=mode)
    assert (dropped.dropped, dropped.reason, dropped.text) == (True, DropReason.DOC_PROGRAM, "")
    kept = execute_doc(PAGE, "keep_doc()", mode=mode)
    assert (kept.dropped, kept.text) == (False, PAGE)


def test_reference_drops_on_any_drop_substring_strict_reads_the_call():
    output = "keep_doc()  # nothing to drop"
    assert execute_doc(PAGE, output, mode=REFERENCE).dropped
    assert not execute_doc(PAGE, output, mode=STRICT).dropped


def test_strict_first_doc_decision_wins_and_a_contradiction_is_reported():
    result = execute_doc(PAGE, "keep_doc()\ndrop_doc()", mode=STRICT)
    assert not result.dropped
    assert error_kinds(result) == [ErrorKind.CONFLICTING_DECISION]
    assert result.errors[0].line == 2


# --- chunk stage: reference rows -------------------------------------------------------------------------


def test_reference_remove_lines_is_inclusive_and_ranges_are_unioned():
    program = "\n".join(
        [
            "remove_lines(line_start=0, line_end=1)",
            "remove_lines(line_start=1, line_end=2)",
            "remove_lines(line_start=8, line_end=9)",
        ]
    )
    result = execute_chunk(PAGE, program, mode=REFERENCE)
    assert kept_lines(result.text) == [3, 4, 5, 6, 7]
    assert result.stats.lines_removed == 5
    assert result.errors == ()


def test_reference_normalize_replaces_over_the_whole_document_in_program_order():
    text = "alpha Home beta\n" + PAGE + "\nHome"
    program = 'normalize(source_str="Home", target_str="Start")\nnormalize(source_str="Start", target_str="Go")'
    result = execute_chunk(text, program, mode=REFERENCE)
    assert result.text == "alpha Go beta\n" + PAGE + "\nGo"
    assert (result.stats.normalize_applied, result.stats.normalize_missed) == (2, 0)


def test_reference_normalize_runs_before_removal_and_a_missing_source_is_silent():
    program = "\n".join(
        [
            'normalize(source_str="L0w1", target_str="")',
            'normalize(source_str="absent")',
            "remove_lines(line_start=0, line_end=0)",
        ]
    )
    result = execute_chunk(PAGE, program, mode=REFERENCE)
    assert kept_lines(result.text) == list(range(1, 10))
    assert result.errors == ()
    assert result.stats.normalize_missed == 1


@pytest.mark.parametrize(
    ("program", "kept"),
    [
        ("remove_lines(line_start=12, line_end=14)", list(range(10))),  # start past the last line: 1 error
        ("remove_lines(line_start=8, line_end=30)", list(range(8))),  # end past the last line: 1 error, removed
        ("remove_lines(0, 1)", list(range(10))),  # unparsable: 1 error
    ],
)
def test_reference_one_error_still_applies_the_rest(program, kept):
    result = execute_chunk(PAGE, f"{program}\nremove_lines(line_start=5, line_end=5)", mode=REFERENCE)
    assert kept_lines(result.text) == [line for line in kept if line != 5]
    assert len(result.errors) == 1
    assert not result.program_ignored


def test_reference_two_errors_keep_the_original_text():
    program = "remove_lines(line_start=0, line_end=1)\nremove_lines(8, 9)\nremove_lines(line_start=40, line_end=41)"
    result = execute_chunk(PAGE, program, mode=REFERENCE)
    assert result.text == PAGE
    assert result.program_ignored
    assert error_kinds(result) == [ErrorKind.BAD_ARGUMENTS, ErrorKind.OUT_OF_RANGE]
    assert result.stats.lines_removed == 0


def test_reference_range_errors_are_counted_on_merged_ranges():
    program = "remove_lines(line_start=8, line_end=20)\nremove_lines(line_start=9, line_end=30)"
    result = execute_chunk(PAGE, program, mode=REFERENCE)
    assert len(result.errors) == 1  # one merged range 8..30
    assert kept_lines(result.text) == list(range(8))


def test_reference_a_cut_off_program_loses_its_valid_calls():
    program = "remove_lines(line_start=0, line_end=1)\nremove_lines(line_start=8"
    result = execute_chunk(PAGE, program, mode=REFERENCE)
    assert result.program_ignored
    assert result.text == PAGE


@pytest.mark.parametrize("mode", [REFERENCE, STRICT])
def test_low_word_ratio_guard_drops_at_five_percent(mode):
    text = "\n".join(sentence(f"T{i}") for i in range(20))  # 240 words; keeping one line leaves exactly 5%
    result = execute_chunk(text, "remove_lines(line_start=1, line_end=19)", mode=mode)
    assert (result.dropped, result.reason, result.text) == (True, DropReason.LOW_WORD_RATIO, "")
    kept = execute_chunk(text, "remove_lines(line_start=2, line_end=19)", mode=mode)
    assert not kept.dropped


@pytest.mark.parametrize("mode", [REFERENCE, STRICT])
def test_too_few_words_guard_drops_at_ten_words(mode):
    text = sentence("A", 10) + "\n" + sentence("B", 10)
    assert execute_chunk(text, "remove_lines(line_start=1, line_end=1)", mode=mode).reason is DropReason.TOO_FEW_WORDS
    text = sentence("A", 11) + "\n" + sentence("B", 11)
    assert not execute_chunk(text, "remove_lines(line_start=1, line_end=1)", mode=mode).dropped


@pytest.mark.parametrize("mode", [REFERENCE, STRICT])
def test_a_short_document_is_dropped_even_by_an_empty_program(mode):
    result = execute_chunk("Only a few words here.", "keep_chunk()", mode=mode)
    assert result.reason is DropReason.TOO_FEW_WORDS


@pytest.mark.parametrize("mode", [REFERENCE, STRICT])
@pytest.mark.parametrize("text", ["", "   ", "\n\n \t\n"])
def test_empty_documents_are_dropped_not_crashed(mode, text):
    result = execute_chunk(text, "remove_lines(line_start=0, line_end=0)", mode=mode)
    assert (result.dropped, result.reason) == (True, DropReason.TOO_FEW_WORDS)


def test_reference_ignored_program_still_drops_when_the_edit_leaves_ten_words():
    text = sentence("A", 10) + "\n" + PAGE
    program = "remove_lines(line_start=1, line_end=10)\nremove_lines(0)\nremove_lines(1)"
    assert execute_chunk(text, program, mode=REFERENCE).reason is DropReason.TOO_FEW_WORDS
    strict = execute_chunk(text, "remove_lines(1, 10)\nremove_lines(0)\nremove_lines(1)", mode=STRICT)
    assert (strict.dropped, strict.program_ignored, strict.text) == (False, True, text)


def test_reference_one_argument_normalize_of_a_space_removes_every_space():
    result = execute_chunk(PAGE, 'normalize(source_str=" ")', mode=REFERENCE, guards=NO_GUARDS)
    assert result.text == PAGE.replace(" ", "")
    assert execute_chunk(PAGE, 'normalize(source_str=" ")', mode=REFERENCE).reason is DropReason.TOO_FEW_WORDS


# --- chunk stage: strict corrections ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "remove_lines(0, 1)",
        "remove_lines(start=0, end=1)",
        "remove_lines(line_start=0, line_end=1)  # menu",
    ],
)
def test_strict_reads_every_spelling(program):
    assert kept_lines(execute_chunk(PAGE, program, mode=STRICT).text) == list(range(2, 10))


@pytest.mark.parametrize(
    ("source", "document"),
    [
        ("a=b", "x a=b y"),
        ("(see below)", "x (see below) y"),
        ("Home, About", "x Home, About y"),
    ],
)
def test_strict_normalizes_strings_the_reference_breaks(source, document):
    text = document + "\n" + PAGE
    for quoted in (f'"{source}"', f"'{source}'"):
        result = execute_chunk(text, f"normalize(source_str={quoted}, target_str='')", mode=STRICT)
        assert result.text == "x  y\n" + PAGE
        assert result.stats.normalize_applied == 1
        reference = execute_chunk(text, f"normalize(source_str={quoted}, target_str='')", mode=REFERENCE)
        assert reference.text != result.text  # the reference misreads every one of them


def test_strict_cut_off_program_keeps_its_complete_calls():
    result = execute_chunk(PAGE, "remove_lines(line_start=0, line_end=1)\nremove_lines(line_start=8", mode=STRICT)
    assert kept_lines(result.text) == list(range(2, 10))
    assert error_kinds(result) == [ErrorKind.TRUNCATED]


def test_strict_missing_normalize_source_is_an_error():
    result = execute_chunk(PAGE, 'normalize(source_str="Subscribe now")', mode=STRICT)
    assert error_kinds(result) == [ErrorKind.NORMALIZE_NOT_FOUND]
    assert (result.stats.normalize_applied, result.stats.normalize_missed) == (0, 1)
    assert result.text == PAGE


def test_strict_normalize_of_a_removed_line_is_a_miss_not_an_error():
    result = execute_chunk(PAGE, 'remove_lines(0, 0)\nnormalize(source_str="L0w3")', mode=STRICT)
    assert result.errors == ()
    assert result.stats.normalize_missed == 1


def test_strict_out_of_range_is_clipped_and_reported():
    result = execute_chunk(PAGE, "remove_lines(8, 30)", mode=STRICT)
    assert kept_lines(result.text) == list(range(8))
    assert error_kinds(result) == [ErrorKind.OUT_OF_RANGE]
    assert "clipped" in result.errors[0].message
    past = execute_chunk(PAGE, "remove_lines(3, 3)\nremove_lines(12, 14)", mode=STRICT)
    assert kept_lines(past.text) == [0, 1, 2, *range(4, 10)]
    assert [(error.kind, error.line) for error in past.errors] == [(ErrorKind.OUT_OF_RANGE, 2)]


def test_strict_removes_the_lines_the_model_saw_even_when_normalize_adds_lines():
    program = 'normalize(source_str="L1w1", target_str="split\\nhere")\nremove_lines(2, 2)'
    result = execute_chunk(PAGE, program, mode=STRICT)
    assert LINES[2] not in result.text
    assert LINES[3] in result.text
    assert "split\nhere" in result.text


def test_strict_two_errors_keep_the_original_and_the_limit_is_configurable():
    program = "remove_lines(0, 1)\nremove_lines(40, 41)\nfoo()"
    assert execute_chunk(PAGE, program, mode=STRICT).program_ignored
    applied = execute_chunk(PAGE, program, mode=STRICT, guards=Guards(max_errors=None))
    assert kept_lines(applied.text) == list(range(2, 10))
    assert len(applied.errors) == 2


def test_guards_are_configurable():
    text = sentence("A", 10) + "\n" + sentence("B", 10)
    program = "remove_lines(1, 1)"
    assert execute_chunk(text, program, guards=NO_GUARDS).text == sentence("A", 10)
    assert execute_chunk(text, program, guards=Guards(min_words=10)).dropped
    assert execute_chunk(text, program, guards=Guards(min_words=3, min_word_ratio=0.5)).dropped
    assert not execute_chunk(text, program, guards=Guards(min_words=3, min_word_ratio=0.49)).dropped


@pytest.mark.parametrize(
    "kwargs", [{"min_word_ratio": -0.1}, {"min_word_ratio": 1.5}, {"min_words": -1}, {"max_errors": 0}]
)
def test_invalid_guards_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Guards(**kwargs)


def test_stats_count_what_the_program_did():
    program = "\n".join(
        [
            "remove_lines(0, 1)",
            "remove_lines(1, 2)",
            'normalize(source_str="L5w1")',
            'normalize("L9w9")',
            "keep_chunk()",
        ]
    )
    stats = execute_chunk(PAGE, program, mode=STRICT).stats
    assert stats.words_before == 120
    assert stats.words_after == 120 - 3 * 12 - 2
    assert (stats.lines_before, stats.lines_removed) == (10, 3)
    assert (stats.normalize_applied, stats.normalize_missed) == (2, 0)
    assert stats.calls == {"remove_lines": 2, "normalize": 2, "keep_chunk": 1}


def test_a_parsed_program_runs_like_its_text():
    program = Program((RemoveLines(0, 1), Normalize("L5w1", "")))
    from_text = execute_chunk(PAGE, program.render(), mode=STRICT)
    assert execute_chunk(PAGE, program, mode=STRICT) == from_text


# --- both stages -----------------------------------------------------------------------------------------


def test_execute_runs_the_doc_program_then_the_chunk_program():
    dropped = execute(PAGE, "drop_doc()", "remove_lines(0, 1)")
    assert (dropped.dropped, dropped.reason) == (True, DropReason.DOC_PROGRAM)
    refined = execute(PAGE, "keep_doc()\nfoo()", "remove_lines(0, 1)")
    assert kept_lines(refined.text) == list(range(2, 10))
    assert [(error.stage, error.kind) for error in refined.errors] == [("doc", ErrorKind.UNKNOWN_CALL)]
    assert execute(PAGE).text == PAGE
    assert execute(PAGE, chunk_program="remove_lines(0, 1)").text == refined.text


def test_result_to_dict_is_json_ready():
    result = execute(PAGE, "keep_doc()", "remove_lines(0, 1)\nremove_lines(30, 31)", mode=STRICT)
    data = result.to_dict()
    assert set(data) == {"text", "dropped", "reason", "errors", "stats"}
    assert data["errors"] == [
        {"kind": "out_of_range", "line": 2, "message": "line 30 is past the last line 9: ignored", "stage": "chunk"}
    ]
    assert data["stats"]["lines_removed"] == 2


def test_every_record_counts_every_call_kind_so_columnar_writers_see_one_schema():
    kept = execute(PAGE, "keep_doc()", "remove_lines(0, 1)", mode=STRICT).to_dict()["stats"]["calls"]
    dropped = execute(PAGE, "drop_doc()", mode=STRICT).to_dict()["stats"]["calls"]
    assert set(kept) == set(dropped) == {"keep_doc", "drop_doc", "remove_lines", "normalize", "keep_chunk"}
    assert kept["remove_lines"] == 1 and kept["keep_doc"] == 1 and dropped["drop_doc"] == 1 and kept["normalize"] == 0


# --- bounds: untrusted programs never cost unbounded memory or time --------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_a_growing_normalize_is_over_the_limit_and_the_original_is_kept(mode):
    text = "a banana and a papaya are a snack " * 8  # 271 bytes in the attack; about as much here
    program = "\n".join(['normalize(source_str="a", target_str="aaaa")'] * 20)  # 4**20 times the a's, unbounded
    result = execute_chunk(text, program, mode=mode)
    assert result.text == text and result.program_ignored and not result.dropped
    assert ErrorKind.OVER_LIMIT in error_kinds(result)
    assert result.stats.words_after == result.stats.words_before


@pytest.mark.parametrize("mode", list(Mode))
def test_growth_within_the_bound_is_applied(mode):
    text = PAGE.replace("L3w1", "colour")
    result = execute_chunk(text, 'normalize(source_str="colour", target_str="colour of the sky")', mode=mode)
    assert "colour of the sky" in result.text and not result.program_ignored


@pytest.mark.parametrize(
    ("bounds", "program"),
    [
        (Bounds(max_calls=3), "\n".join(["remove_lines(line_start=9, line_end=9)"] * 4)),
        (Bounds(max_normalize_calls=2), "\n".join(f'normalize(source_str="L{i}w1", target_str="x")' for i in range(3))),
        (Bounds(max_replacements=5), 'normalize(source_str="w1", target_str="")'),  # 10 lines hold "w1", "w10", "w11"
        (Bounds(max_growth=1.0, growth_slack=10), 'normalize(source_str="L0w1", target_str="' + "z" * 20 + '")'),
    ],
)
@pytest.mark.parametrize("mode", list(Mode))
def test_every_bound_ignores_the_program(bounds, program, mode):
    result = execute_chunk(PAGE, program, mode=mode, guards=NO_GUARDS, bounds=bounds)
    assert result.text == PAGE and result.program_ignored
    assert error_kinds(result).count(ErrorKind.OVER_LIMIT) == 1
    assert execute_chunk(PAGE, program, mode=mode, guards=NO_GUARDS).text != PAGE  # within the default bounds


def test_an_over_limit_program_does_not_stop_the_next_document():
    bomb = "\n".join(['normalize(source_str="L", target_str="LLLLLLLL")'] * 30)
    assert execute_chunk(PAGE, bomb).program_ignored
    assert execute_chunk(PAGE, "remove_lines(line_start=0, line_end=1)").text == "\n".join(LINES[2:])
