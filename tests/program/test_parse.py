"""The strict parser: every spelling of PROX_SPEC §1, and each problem as a typed error with its line."""

from pathlib import Path

import pytest

from proxkit.program import (
    DropDoc,
    ErrorKind,
    KeepChunk,
    KeepDoc,
    Normalize,
    Program,
    RemoveAllLines,
    RemoveLines,
    Stage,
    execute_chunk,
    parse_program,
    split_stages,
)
from proxkit.program.parse import MAX_LINE_NUMBER


def chunk(text: str) -> Program:
    return parse_program(text, Stage.CHUNK)


def kinds(program: Program) -> list[tuple[ErrorKind, int]]:
    return [(error.kind, error.line) for error in program.errors]


@pytest.mark.parametrize(
    "line",
    [
        "remove_lines(line_start=7, line_end=9)",
        "remove_lines(start=7, end=9)",
        "remove_lines(7, 9)",
        "remove_lines(7,9)",
        "remove_lines( line_start = 7 , line_end = 9 )",
        "remove_lines(line_end=9, line_start=7)",
        "remove_lines(7, line_end=9)",
        "remove_lines(start=7, line_end=9)",
        "  remove_lines(line_start=7, line_end=9)  # the footer",
        "remove_lines(007, 009)  # zero-padded as in the prompt",
        "remove_lines(line_start=007, line_end=09)",
    ],
)
def test_every_spelling_of_remove_lines_reads_the_same_call(line):
    program = chunk(line)
    assert program.calls == (RemoveLines(7, 9),)
    assert program.errors == ()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('normalize(source_str="Click here", target_str="")', Normalize("Click here", "")),
        ("normalize(source_str='Click here', target_str='')", Normalize("Click here", "")),
        ('normalize(source_str="Click here")', Normalize("Click here", "")),
        ('normalize("Click here", "more")', Normalize("Click here", "more")),
        ('normalize(source_str="a, b", target_str="c")', Normalize("a, b", "c")),
        ('normalize(source_str="x=1", target_str="y")', Normalize("x=1", "y")),
        ('normalize(source_str="(see below)", target_str="")', Normalize("(see below)", "")),
        ('normalize(source_str="it\'s \\"quoted\\"", target_str=\'\')', Normalize('it\'s "quoted"', "")),
        ('normalize(source_str="Read more # here")  # a comment', Normalize("Read more # here", "")),
        ('normalize(source_str="a\\nb", target_str="a b")', Normalize("a\nb", "a b")),
    ],
)
def test_normalize_strings_are_read_as_python_literals(line, expected):
    program = chunk(line)
    assert program.calls == (expected,)
    assert program.errors == ()


@pytest.mark.parametrize("name", ["keep_chunk", "skip_chunk", "untouch_doc"])
def test_keep_chunk_synonyms(name):
    assert chunk(f"{name}()").calls == (KeepChunk(),)


def test_doc_calls():
    assert parse_program("keep_doc()", Stage.DOC).calls == (KeepDoc(),)
    assert parse_program(" drop_doc() ", Stage.DOC).calls == (DropDoc(),)


def test_comments_blank_lines_and_code_fences_are_skipped_and_lines_are_counted():
    text = "```python\n# navigation at the top\n\nremove_lines(0, 2)\n\nkeep_chunk()\n```"
    program = chunk(text)
    assert program.calls == (RemoveLines(0, 2), KeepChunk())
    assert program.lines == (4, 6)
    assert program.errors == ()


def test_several_calls_on_one_line():
    assert chunk("remove_lines(0, 1); keep_chunk()").calls == (RemoveLines(0, 1), KeepChunk())


def test_remove_all_lines_spelling():
    assert chunk("remove_lines(all=True)").calls == (RemoveAllLines(),)
    assert kinds(chunk("remove_lines(all=True, line_start=1)")) == [(ErrorKind.BAD_ARGUMENTS, 1)]
    assert kinds(chunk("remove_lines(all=1)")) == [(ErrorKind.BAD_ARGUMENTS, 1)]


def test_a_program_cut_off_mid_call_keeps_its_complete_calls():
    program = chunk(
        'remove_lines(0, 3)\nnormalize(source_str="Share this", target_str="")\nremove_lines(line_start=9, li'
    )
    assert program.calls == (RemoveLines(0, 3), Normalize("Share this", ""))
    assert kinds(program) == [(ErrorKind.TRUNCATED, 3)]


def test_a_program_cut_off_inside_a_string_is_truncated():
    program = chunk('keep_chunk()\nnormalize(source_str="Share th')
    assert program.calls == (KeepChunk(),)
    assert kinds(program) == [(ErrorKind.TRUNCATED, 2)]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("remove lines 3 to 5", ErrorKind.SYNTAX),
        ("The chunk looks clean.", ErrorKind.SYNTAX),
        ("x = remove_lines(1, 2)", ErrorKind.SYNTAX),
        ("remove_lines", ErrorKind.SYNTAX),
        ("delete_lines(1, 2)", ErrorKind.UNKNOWN_CALL),
        ("os.system('rm -rf /')", ErrorKind.UNKNOWN_CALL),
        ("remove_lines(1)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(1, 2, 3)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(-1, 2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines('1', 2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(1.0, 2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(True, 2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(1, line_start=2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(line_begin=1, line_end=2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(n, 2)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(**spec)", ErrorKind.BAD_ARGUMENTS),
        ("remove_lines(5, 3)", ErrorKind.EMPTY_RANGE),
        ("normalize()", ErrorKind.BAD_ARGUMENTS),
        ("normalize(source_str=3)", ErrorKind.BAD_ARGUMENTS),
        ('normalize(source_str="")', ErrorKind.BAD_ARGUMENTS),
        ('normalize(source_str=" ", target_str="")', ErrorKind.BAD_ARGUMENTS),
        ("keep_chunk(1)", ErrorKind.BAD_ARGUMENTS),
        ("drop_doc()", ErrorKind.WRONG_STAGE),
    ],
)
def test_each_problem_is_a_typed_error_on_its_line(text, kind):
    program = chunk(f"keep_chunk()\n{text}")
    assert program.calls == (KeepChunk(),)
    assert kinds(program) == [(kind, 2)]
    assert program.errors[0].stage is Stage.CHUNK
    assert program.errors[0].message


def test_chunk_calls_in_a_doc_program_are_wrong_stage_errors():
    program = parse_program("keep_doc()\nremove_lines(0, 1)", Stage.DOC)
    assert program.calls == (KeepDoc(),)
    assert kinds(program) == [(ErrorKind.WRONG_STAGE, 2)]
    assert program.errors[0].stage is Stage.DOC


def test_program_text_is_never_evaluated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    attacks = [
        "__import__('pathlib').Path('pwned').touch()",
        "remove_lines(__import__('pathlib').Path('pwned').touch(), 1)",
        "normalize(source_str=open('pwned', 'w').write('x'))",
        "remove_lines(line_start=(lambda: __import__('pathlib').Path('pwned').touch())(), line_end=1)",
    ]
    program = chunk("\n".join(attacks))
    assert program.calls == ()
    assert len(program.errors) == len(attacks)
    assert not Path("pwned").exists()


def test_odd_input_becomes_errors_not_exceptions():
    for text in ["remove_lines(" + "(" * 300 + ")", "normalize('\x00')", "remove_lines(1" + "0" * 5000 + ", 2)"]:
        program = chunk(text)
        assert program.calls == ()
        assert len(program.errors) == 1
    padded = chunk("remove_lines(0007, 9); éé")  # zero-padded numbers are read from an unpadded copy of the line
    assert padded.calls == (RemoveLines(7, 9),) and padded.errors[0].message == "not a call: 'éé'"


HUGE = "0x" + "f" * 4000  # past the 4,300 digits Python will turn into text


@pytest.mark.parametrize("call", [f"remove_lines({HUGE}, 0)", f"remove_lines(-{HUGE}, 1)", f"remove_lines(0, {HUGE})"])
def test_numbers_no_document_reaches_are_bad_arguments_named_without_their_digits(call):
    program = chunk(call)
    assert program.calls == () and kinds(program) == [(ErrorKind.BAD_ARGUMENTS, 1)]
    assert "a number" in program.errors[0].message and len(program.errors[0].message) < 120
    document = "The council approved the new lanes on Tuesday evening.\nConstruction starts early next summer."
    refined = execute_chunk(document, call)
    assert refined.text == document and refined.errors == program.errors
    assert chunk(f"remove_lines(0, {MAX_LINE_NUMBER})").calls == (RemoveLines(0, MAX_LINE_NUMBER),)


def test_a_normalize_string_that_is_no_text_is_a_bad_argument():
    for call in ('normalize(source_str="foo", target_str="\\ud800")', 'normalize("\\udfff bar")'):
        program = chunk(call)
        assert program.calls == () and kinds(program) == [(ErrorKind.BAD_ARGUMENTS, 1)]
    assert chunk('normalize("\\u00e9", "\\U0001F600")').calls == (Normalize("\u00e9", "\U0001f600"),)


def test_node_text_is_sliced_from_its_line_not_searched_for(monkeypatch):
    """`ast.get_source_segment` walks the line again for every node: a line of thousands of calls would
    cost quadratic time; a node within one physical line is read by its offsets instead."""
    import ast

    monkeypatch.setattr(ast, "get_source_segment", lambda *args, **kwargs: pytest.fail("walked the line"))
    assert len(chunk("keep_chunk();" * 3000).calls) == 3000
    many = chunk("remove_lines(" + ",".join(["line_start=1"] * 20_000) + ")")
    assert "got 'line_start' twice" in many.errors[0].message
    assert kinds(chunk("\uff52emove_lines(1, 2)")) == [(ErrorKind.UNKNOWN_CALL, 1)]  # the written name, sliced
    assert chunk("x = 1; keep_chunk(); remove_lines(é=1)").errors[0].message == "not a call: 'x = 1'"
    monkeypatch.undo()
    assert chunk("keep_chunk();\rremove_lines(line_start=1, line_end=2)").calls == (KeepChunk(), RemoveLines(1, 2))


def test_split_stages_keeps_program_line_numbers():
    doc, chunk_text = split_stages("keep_doc()\nremove_lines(0, 1)\n  drop_doc()\nkeep_chunk()")
    assert doc == "keep_doc()\n\n  drop_doc()\n"
    assert chunk_text == "\nremove_lines(0, 1)\n\nkeep_chunk()"
    assert chunk(chunk_text).lines == (2, 4)


def test_a_removal_mask_becomes_one_call_per_run_with_global_numbers():
    assert Program.removing([True, True, False, True], first_line=10).render() == (
        "remove_lines(line_start=10, line_end=11)\nremove_lines(line_start=13, line_end=13)"
    )
    assert Program.removing([False, False]).render() == "keep_chunk()"
    assert Program.removing([]).calls == (KeepChunk(),)


FULLWIDTH_R, FULLWIDTH_K, FULLWIDTH_L, FULLWIDTH_D = "\uff52", "\uff4b", "\uff4c", "\uff44"
BOLD_NORMALIZE = "".join(chr(0x1D41A + ord(letter) - ord("a")) for letter in "normalize")  # mathematical bold


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (FULLWIDTH_R + "emove_lines(line_start=0, line_end=1)", ErrorKind.UNKNOWN_CALL),
        (BOLD_NORMALIZE + "(source_str='a', target_str='')", ErrorKind.UNKNOWN_CALL),
        (FULLWIDTH_K + "eep_chunk()", ErrorKind.UNKNOWN_CALL),
        ("remove_lines(" + FULLWIDTH_L + "ine_start=0, line_end=1)", ErrorKind.BAD_ARGUMENTS),
    ],
)
def test_look_alike_names_are_not_calls(text, kind):
    import unicodedata

    assert unicodedata.normalize("NFKC", text).isascii()  # what Python's parser would read as the real name
    program = chunk(text)
    assert program.calls == () and [error.kind for error in program.errors] == [kind]
    assert parse_program(FULLWIDTH_D + "rop_doc()", Stage.DOC).calls == ()


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        ('normalize(source_str="Share \\u00e9", target_str="")', True),
        ('normalize(source_str="a\\ud7ff", target_str="\\ue000")', True),
        ('normalize(source_str="a\\ud800", target_str="")', False),  # a lone surrogate: no text
        ('normalize(source_str="a", target_str="\\udfff")', False),
        ('normalize(source_str="a\x00b", target_str="")', False),  # a NUL the parser refuses
    ],
)
def test_every_answer_of_the_chunk_grammar_parses_and_no_other(answer, accepted):
    xgrammar = pytest.importorskip("xgrammar")
    from xgrammar.testing import _is_grammar_accept_string

    from proxkit.program.grammar import CHUNK_GRAMMAR

    assert _is_grammar_accept_string(xgrammar.Grammar.from_ebnf(CHUNK_GRAMMAR), answer) is accepted
    assert (chunk(answer).errors == ()) is accepted
