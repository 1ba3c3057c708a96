"""What a refiner reads of a text's lines: content lines, and decisions spread back over blank lines."""

import pytest

from proxkit.layout import (
    WordPieces,
    canonical_line,
    content_lines,
    content_text,
    plain_text,
    read_as_text,
    word_pieces,
)
from proxkit.program import Guards, Program, execute_chunk


def test_canonical_lines_lose_only_whitespace():
    assert canonical_line("  A\tsentence\u00a0with  gaps. \r") == "A sentence with gaps."
    assert canonical_line(" \t\r") == ""


def test_a_line_of_zero_width_characters_is_blank_but_they_stay_inside_text():
    assert canonical_line("\u200b") == ""
    assert canonical_line("\ufeff \u200b\u2060 ") == ""
    assert canonical_line("\u200e\u202a\u2066\u00ad") == ""  # direction marks and embeddings, a soft hyphen
    assert canonical_line(" zero\u200bwidth ") == "zero\u200bwidth"
    content = content_lines(["Kept.", "\u200b", "", "\ufeffAlso kept."])
    assert content.lines == ["Kept.", "\ufeffAlso kept."]
    assert content.positions == [0, 3]


def test_content_lines_skip_blank_and_whitespace_only_lines():
    content = content_lines(["", "Title\r", "  ", "\t", "First  paragraph.", "", "Second."])
    assert content.lines == ["Title", "First paragraph.", "Second."]
    assert content.positions == [1, 4, 6]
    assert content.total == 7


def test_a_line_of_lines_ending_in_lone_cr_or_u2028_is_read_as_its_lines_and_removed_only_whole():
    content = content_lines(["Menu\rThe council met.\r", "", "Share\u2028\u2028Print", "Kept."])
    assert content.lines == ["Menu", "The council met.", "Share", "Print", "Kept."]
    assert content.positions == [0, 0, 2, 2, 3]
    assert content.spread([True, False, True, True, False]) == [False, False, True, False]
    assert content.spread([True, True, False, False, True]) == [True, True, False, True]


def test_a_removed_paragraph_takes_the_break_before_it_and_the_breaks_around_kept_text_stay():
    text = "\n".join(["Menu", "", "Kept one.", "", "Share this", "", "Kept two.", "", ""])
    content = content_lines(text.split("\n"))
    remove = content.spread([True, False, True, False])
    assert remove == [True, True, False, True, True, False, False, False, False]
    refined = execute_chunk(text, Program.removing(remove).render(), guards=Guards(min_words=0))
    assert refined.text == "Kept one.\n\nKept two.\n\n"


def kept(text: str, remove: list[bool]) -> str:
    lines = text.split("\n")
    spread = content_lines(lines).spread(remove)
    return "\n".join(line for line, removed in zip(lines, spread, strict=True) if not removed)


def test_one_break_stays_between_kept_paragraphs_wherever_the_removed_lines_were():
    assert kept("A\n\nB\nC", [False, True, False]) == "A\n\nC"  # a paragraph's first line removed
    assert kept("A\nB\n\nC", [False, True, False]) == "A\n\nC"  # a paragraph's last line removed
    assert kept("A\n\n\nB\nC\n\nD", [False, True, True, False]) == "A\n\nD"  # the last run before D
    assert kept("A\nB\nC", [False, True, False]) == "A\nC"  # no break where the text had none
    assert kept("A\n\nB\n\nC", [False, True, True]) == "A"  # nothing kept after: no trailing break
    assert kept("\n\nA\n\nB", [False, False]) == "A\n\nB"  # no leading break
    assert kept("R\n\nK", [True, False]) == "K"


def test_blank_lines_after_the_last_content_line_follow_it():
    content = content_lines(["Kept.", "Footer", "", " "])
    assert content.spread([False, True]) == [False, True, True, True]


def test_a_text_without_content_removes_nothing_and_decisions_must_match_the_content():
    assert content_lines(["", "  "]).spread([]) == [False, False]
    with pytest.raises(ValueError, match="2 decisions for 1 content lines"):
        content_lines(["a", ""]).spread([True, False])


def test_long_lines_are_cut_into_pieces_of_whole_words():
    row = "Home Football Reading 0-2 Portsmouth made the best possible start"  # 10 words
    cut = word_pieces([row, "Login"], 4)
    assert cut.pieces == ["Home Football Reading 0-2", "Portsmouth made the best", "possible start", "Login"]
    assert cut.origins == [0, 0, 0, 1]
    assert word_pieces([row], 10).pieces == [row] and word_pieces([""], 3).pieces == [""]
    only_long = word_pieces([row, "Login now"], 4, longer_than=9)
    assert only_long.pieces == [*cut.pieces[:3], "Login now"] and only_long.origins == [0, 0, 0, 1]
    assert word_pieces([row, "Login now"], 1, longer_than=10).pieces == [row, "Login now"]  # 10 words: not longer
    assert WordPieces.whole([row, ""]) == WordPieces([row, ""], [0, 1])


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ('  * [Home](/ "Home: top news") | [About](/about)', "* Home | About"),
        ("## Council approves lanes ##", "Council approves lanes"),
        (
            "The **council** _approved_ the [lanes](http://x.org/a?b=1). ![map](/m.png)",
            "The council approved the lanes.",
        ),
        ("[![logo](/l.gif) Get it by mail!](/subscribe)", "Get it by mail!"),
        ("See [Python](https://en.wikipedia.org/wiki/Python_(language)) and `print()`", "See Python and print()"),
        ("> > quoted \\*not emphasis\\* and 1\\. item", "quoted *not emphasis* and 1. item"),
        ("**CITIZENS for", "CITIZENS for"),
        ("> ## Quoted title", "Quoted title"),
        ("[\u200b](/x) **\u200b**", ""),
        ("![](/s.gif) | ![](/s.gif) | ![](/s.gif)", ""),
        ("---|---:", ""),
        ("* * *", ""),
        ("Text[[1]](https://en.wikipedia.org/wiki/X#cite_note-1) and [a page](my page.html)", "Text[1] and a page"),
        ('[t](/a "He said "hi"") [p](/x\\(y\\)) [e]()', "t p e"),
        ("[[a](/x) b](/y)", "a b"),
    ],
)
def test_markdown_reads_as_the_text_it_marks_up(markdown: str, text: str) -> None:
    assert plain_text(markdown) == text


@pytest.mark.parametrize(
    "line",
    [
        "Home | About | Contact",
        "snake_case_name = 2*3*4 * x",
        "Price  12",
        "» Next",
        "A [1] note (see below).",
        "handlers[name](request, response)",
    ],
)
def test_plain_text_reads_as_it_is(line: str) -> None:
    assert plain_text(line) == canonical_line(line)


def test_only_markdown_is_read_as_text_and_plain_text_stays_as_it_is() -> None:
    plain = ["# arch-chroot /mnt", "Read the _whole_ manual first.", "---", "*", "|", "See [1] and (2)."]
    assert read_as_text(plain) == plain
    markdown = [*plain, "[Home](/) | [About](/about)", "![logo](/l.png)"]
    assert read_as_text(markdown) == [
        "arch-chroot /mnt", "Read the whole manual first.", "", "", "", "See [1] and (2).", "Home | About", ""
    ]  # fmt: skip
    text = "\n\n".join(markdown)
    assert content_text(text) == "\n".join(markdown)
    assert content_text(text, plain=True) == "\n".join(line for line in read_as_text(markdown) if line)


@pytest.mark.timeout(20)  # each line took 30-60 s with lazy spans that ran to the line's end for every mark
@pytest.mark.parametrize(
    "unit", ["_a ", "**a ", "__a ", "*a ", "o._p + ", "[a](", "(", " #", "[[a]", "[a](b (c", "]( "]
)
def test_markdown_marks_without_an_end_are_read_in_linear_time(unit: str) -> None:
    line = unit * (100_000 // len(unit))
    assert plain_text(line) is not None
    assert read_as_text(["[a](/a) [b](/b)", "[c](/c)", line])[-1] == plain_text(line)


def test_markdown_with_nothing_left_to_read_is_read_as_it_is() -> None:
    gallery = ["![a](/1.jpg)", "![b](/2.jpg)", "[![c](/3.jpg)](/3)"]
    assert read_as_text(gallery) == gallery
    assert content_text("\n\n".join(gallery), plain=True) == "\n".join(gallery)
