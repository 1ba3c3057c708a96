"""What a refiner reads of a text's lines, whatever its layout.

Extractors and cleaning passes wrap the same text differently: blank lines between paragraphs (or runs of
them), CRLF line ends, trailing spaces, tabs. None of that is content, so a learned refiner reads only the
content lines, each with its whitespace collapsed (`content_lines`), and its decisions on them are spread
back over the original lines (`ContentLines.spread`): a program stays valid for the text it was written for,
and the paragraph breaks around kept text stay where they were.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

READER_VERSION = 4
"""Changes whenever what a layout-blind reader sees of a text changes (2: lines of only format characters are
blank; 3: Markdown read as text, `read_as_text`, for taggers with `plain_markup`; 4: link texts that hold
brackets and addresses that hold spaces read as links too, lines split at `LINE_BREAKS`: bump it when those
rules change), so a program cache written under an earlier rule is not reused."""


def has_visible_text(text: str) -> bool:
    """Whether `text` holds a character that shows: one that is neither whitespace nor a format character
    (Unicode category Cf: zero-width space and joiners, byte-order mark, direction marks…)."""
    return any(not char.isspace() and unicodedata.category(char) != "Cf" for char in text)


def canonical_line(line: str) -> str:
    """The line with every run of whitespace (spaces, tabs, CR, no-break spaces…) one space, and stripped;
    empty when nothing visible is left (`has_visible_text`): a line of zero-width characters is blank."""
    text = " ".join(line.split())
    return text if has_visible_text(text) else ""


_BRACKETED = r"\[((?:[^\[\]]|\[[^\[\]]*+\])*+)\]"  # [text], the text may hold one level of […]: [[1]](#cite)
_TARGET = r'\((?:"[^"\n]*"|[^()\n",]|,(?! )|\([^()\n]*+\))*+\)'  # (address "title"): spaces, one level of (…)
# and quoted titles inside; a ", " outside quotes makes it a call's arguments (`handlers[name](request, response)`)
_IMAGE = re.compile(r"(?<!\\)!" + _BRACKETED + _TARGET)
_LINK = re.compile(r"(?<!\\)" + _BRACKETED + _TARGET)
_HEADING = re.compile(r"^#{1,6}\s+|(?<=\s)#+$")
_QUOTE = re.compile(r"^(?:>\s?)+")
_STRONG = re.compile(r"(\*\*|__)(?=\S)((?:(?!\1).)+?)(?<=\S)\1")  # a span stops at the next mark: linear
_UNPAIRED = re.compile(r"\*\*|__")  # the mark of a bold run that goes on over other lines
_EMPHASIS = re.compile(r"(?<![\w*\\])([*_])(?=[^\s*_])((?:(?!\1).)+?)(?<=[^\s\\])\1(?![\w*])")
_CODE = re.compile(r"`([^`]+)`")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_MARKS_ONLY = re.compile(r"[\s\-*_|:=#>+]*")  # rules (`---`, `* * *`), table rules and empty cells, bare marks
MARKDOWN_MIN_LINKS = 2  # lines with a link or an image that make a text Markdown (`read_as_text`)


def plain_text(line: str) -> str:
    """A line of Markdown read as the text it marks up, whitespace collapsed: links as their text, images
    gone, no heading, quote, emphasis or code marks, escapes undone; a line of marks alone (`---`, `* * *`,
    `---|---`, `| |`) empty. List bullets stay (HTML-to-text tools write them too)."""
    text = _LINK.sub(r"\1", _IMAGE.sub("", line))
    text = _LINK.sub(r"\1", text)  # a link around a link's text, as `[![logo](a.png) Home](/)` becomes
    text = _HEADING.sub("", _QUOTE.sub("", text.strip()))
    text = _UNPAIRED.sub("", _EMPHASIS.sub(r"\2", _STRONG.sub(r"\2", text)))
    text = _ESCAPE.sub(r"\1", _CODE.sub(r"\1", text))
    return "" if _MARKS_ONLY.fullmatch(text) else canonical_line(text)


def is_markdown(lines: Sequence[str]) -> bool:
    """Whether `lines` are Markdown: at least `MARKDOWN_MIN_LINKS` of them hold a link or an image written
    `[text](address)`, as every converter to Markdown writes a page's links."""
    return sum(bool(_LINK.search(line) or _IMAGE.search(line)) for line in lines) >= MARKDOWN_MIN_LINKS


def read_as_text(lines: Sequence[str]) -> list[str]:
    """Lines in Markdown (`is_markdown`) read as the text they mark up (`plain_text`), others as they are: in
    plain text a `# comment`, `_word_` or `---` is text. Markdown with no text (a gallery of images, a
    list of bare links to addresses) is read as it is too: its marks are all there is to judge."""
    if not is_markdown(lines):
        return list(lines)
    read = [plain_text(line) for line in lines]
    return read if any(read) else list(lines)


@dataclass(frozen=True)
class ContentLines:
    """The content lines of a text: `lines` (canonical, none empty), `positions` (each one's index among the
    original lines) and `total` (how many original lines there were). An original line that holds other
    line breaks (`LINE_BREAKS`: a lone CR, U+2028…) gives one content line per piece, all at its position."""

    lines: list[str]
    positions: list[int]
    total: int

    def spread(self, remove: Sequence[bool]) -> list[bool]:
        """Per original line, from one decision per content line: a content line as decided (an original
        line of several, removed only when all of them are); of the blank lines between kept text, only the
        last run before the next kept content line stays (one paragraph break where the kept text had one,
        wherever the removed lines were); none before the first kept line (no leading breaks); blank lines
        after the last content line follow that line."""
        if len(remove) != len(self.lines):
            raise ValueError(f"{len(remove)} decisions for {len(self.lines)} content lines")
        decided: dict[int, bool] = {}
        for position, gone in zip(self.positions, map(bool, remove), strict=True):
            decided[position] = decided.get(position, True) and gone
        last = self.positions[-1] if self.positions else -1
        breaks = _last_breaks_before_kept_lines(decided, last)
        spread, kept_before = [], False
        for index in range(self.total):
            if index in decided:
                spread.append(decided[index])
                kept_before = kept_before or not decided[index]
            elif index > last:  # after the last content line
                spread.append(decided.get(last, False))
            else:
                spread.append(not (kept_before and index in breaks))
        return spread


def _last_breaks_before_kept_lines(decided: dict[int, bool], last: int) -> set[int]:
    """The blank lines (not in `decided`, the content lines' remove decisions by position) of the last run
    before each kept content line: no blank line between them and it."""
    breaks, seeking, in_run = set(), False, False
    for index in range(last, -1, -1):
        if index not in decided:
            if seeking:
                breaks.add(index)
                in_run = True
            continue
        seeking = not decided[index] or (seeking and not in_run)  # a kept line; removed lines before it
        in_run = False
    return breaks


LINE_BREAKS = re.compile("[\r\u2028\u2029]")
"""Line breaks other than LF: a text whose lines end in a lone CR (old Mac files) or U+2028 / U+2029 (line and
paragraph separators) is one line to a program (lines end at LF), but its reader still sees each line. Not
the rarer ones `str.splitlines` knows: U+0085 is often a mis-decoded '…', a form feed a page break in a line."""


def content_lines(lines: Sequence[str]) -> ContentLines:
    """The non-blank lines of `lines`, canonical (`canonical_line`), with where each one was; a line that
    holds other line breaks (`LINE_BREAKS`) read as the lines they make."""
    kept, positions = [], []
    for index, line in enumerate(lines):
        for piece in LINE_BREAKS.split(line):
            if text := canonical_line(piece):
                kept.append(text)
                positions.append(index)
    return ContentLines(kept, positions, len(lines))


def content_text(text: str, plain: bool = False) -> str:
    """The content lines of `text`, one per line: what a layout-blind reader needs of a whole document (the
    doc stage's prompt is cut to a token budget, so blank lines must not spend it); with `plain`, their
    Markdown read as text (`read_as_text`: no link address spends it either)."""
    lines = content_lines(text.split("\n")).lines
    return "\n".join(filter(None, read_as_text(lines)) if plain else lines)


@dataclass(frozen=True)
class WordPieces:
    """Lines cut into pieces of words (`word_pieces`): the pieces, and for each the index of its line."""

    pieces: list[str]
    origins: list[int]

    @classmethod
    def whole(cls, lines: Sequence[str]) -> WordPieces:
        """The lines uncut: each its own piece."""
        return cls(list(lines), list(range(len(lines))))


def word_pieces(lines: Sequence[str], words: int, longer_than: int | None = None) -> WordPieces:
    """The lines with each one longer than `longer_than` words (default: `words`) cut into pieces of at most
    `words` words: a reader that sees only a line's first tokens then sees all of a long line (a paragraph,
    or a table row holding a page's menu and article side by side, as some extractors write them). Every
    line gives at least one piece."""
    limit = words if longer_than is None else longer_than
    pieces, origins = [], []
    for index, line in enumerate(lines):
        split = line.split()
        cut = [" ".join(split[start : start + words]) for start in range(0, len(split), words)]
        cut = cut if len(split) > limit else [line]
        pieces += cut
        origins += [index] * len(cut)
    return WordPieces(pieces, origins)
