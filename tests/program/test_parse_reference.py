"""The reference reader: the authors' split-based parsing, defects included (PROX_SPEC §3.3)."""

import pytest

from proxkit.program import DropDoc, ErrorKind, KeepDoc, Mode, Normalize, Program, RemoveAllLines, RemoveLines, Stage
from proxkit.program import parse_program as parse
from proxkit.program.execute import execute_chunk

REF = Mode.REFERENCE


def chunk(text: str) -> Program:
    return parse(text, Stage.CHUNK, Mode.REFERENCE)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("drop_doc()", DropDoc()),
        (" keep_doc()", KeepDoc()),
        ("keep_doc()  # no need to drop", DropDoc()),  # any "drop" drops
        ("This page is fine.", KeepDoc()),
        ("", KeepDoc()),
    ],
)
def test_doc_output_drops_iff_it_contains_drop(output, expected):
    assert parse(output, Stage.DOC, Mode.REFERENCE).calls == (expected,)


def test_keyword_and_alias_spellings_are_read():
    program = chunk("remove_lines(line_start=1, line_end=2)\nremove_lines(start=4, end=5)")
    assert program.calls == (RemoveLines(1, 2), RemoveLines(4, 5))
    assert program.errors == ()


def test_positional_arguments_are_errors():
    program = chunk("remove_lines(7, 9)")
    assert program.calls == ()
    assert [error.kind for error in program.errors] == [ErrorKind.BAD_ARGUMENTS]


def test_a_string_is_cut_at_the_first_equals_sign():
    assert chunk('normalize(source_str="a=b", target_str="")').calls == (Normalize("a", ""),)


def test_a_string_is_cut_at_the_first_closing_parenthesis():
    assert chunk('normalize(source_str="(see below)", target_str="x")').calls == (Normalize("(see below", ""),)


def test_a_string_with_a_comma_makes_the_call_silently_ignored():
    program = chunk('normalize(source_str="Home, About", target_str="")')
    assert program.calls == ()
    assert program.errors == ()


def test_single_quotes_stay_part_of_the_string():
    assert chunk("normalize(source_str='Share', target_str='')").calls == (Normalize("'Share'", "''"),)


def test_a_space_before_the_value_stays_part_of_the_string():
    assert chunk('normalize(source_str= "Share")').calls == (Normalize(' "Share', ""),)


def test_a_cut_off_call_counts_two_errors():
    program = chunk("remove_lines(line_start=0, line_end=3)\nremove_lines(line_start=9")
    assert program.calls == (RemoveLines(0, 3),)
    assert [(error.kind, error.line) for error in program.errors] == [
        (ErrorKind.TRUNCATED, 2),
        (ErrorKind.BAD_ARGUMENTS, 2),
    ]


def test_a_missing_parenthesis_still_reads_the_call_without_its_last_character():
    program = chunk("remove_lines(line_start=1, line_end=23")
    assert program.calls == (RemoveLines(1, 2),)
    assert [error.kind for error in program.errors] == [ErrorKind.TRUNCATED]


def test_other_lines_are_skipped_without_errors():
    program = chunk("keep_chunk()\n# remove the menu\n  remove_lines(line_start=0, line_end=1)\nHello")
    assert program == Program()


def test_one_argument_normalize_of_a_space_is_kept_but_the_two_argument_one_is_skipped():
    assert chunk('normalize(source_str=" ")').calls == (Normalize(" ", ""),)
    assert chunk('normalize(source_str=" ", target_str="")').calls == ()
    assert chunk('normalize(source_str="", target_str="x")').calls == ()


def test_a_normalize_of_nothing_replaces_nothing_and_the_rest_of_the_program_runs():
    assert chunk('normalize(source_str="")').calls == chunk('normalize(source_str="=")').calls == ()
    document = "\n".join(["one two three four five six seven eight nine ten"] * 1200)  # 60,000 characters
    refined = execute_chunk(document, 'remove_lines(line_start=0, line_end=2)\nnormalize(source_str="")', mode=REF)
    assert refined.errors == () and refined.text == "\n".join(document.split("\n")[3:])  # as str.replace("", "")


def test_remove_all():
    assert chunk("remove_lines(all=True)").calls == (RemoveAllLines(),)


def test_reversed_and_negative_ranges_are_read_as_written():
    assert chunk("remove_lines(line_start=5, line_end=3)\nremove_lines(line_start=-2, line_end=1)").calls == (
        RemoveLines(5, 3),
        RemoveLines(-2, 1),
    )
