"""Noise inside kept lines, written as `normalize(source_str=..., target_str="")` calls that are safe to run.

Whoever decides which words of a page are noise — the word alignment with a human gold, a tagger's word
head, the deletions a rewrite implies — marks them per line (`word_spans` locates the words); this module
turns the noise words of the lines a program keeps into the few `normalize` calls that delete them, and only
those that cannot hurt. `normalize` replaces every occurrence of its source in the whole document, so a
call is written only when:

- its source is one run of noise words (with the separators between them) at a line's start or end, or
  between two runs of content, cut so that removing it leaves one space between the content around it;
- it is specific and short: at least `MIN_SOURCE_CHARS` characters besides spaces and at most
  `MAX_SOURCE_WORDS` words, holding a letter or digit, no line break, no run of whitespace (so it reads the
  same in the raw and in the canonical line), no words run together by an extractor ('2024If', whose parts
  a gold may hold apart);
- every occurrence of it in the kept text, as `str.replace` finds them, covers noise words only, and no
  occurrence overlaps another call's (so calls never disturb one another);
- its words, as a phrase, are not among the `protected` words (a gold's: where a clean copy holds the
  phrase, removing it anywhere is a risk, however well the alignment placed it), and no word of it run
  together with its neighbour is a protected word (an extractor split 'business es', the gold has it whole),
  nor is it a protected word with a character or two of broken encoding ('editionâ'), nor letters spaced out;
- the executor, run on the kept text with the calls, deletes exactly those occurrences (checked).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from proxkit.layout import LINE_BREAKS, canonical_line
from proxkit.program import Guards, KeepChunk, Normalize, Program, execute_chunk

MIN_SOURCE_CHARS = 6  # non-space characters of a source: shorter strings are too likely to occur in content
MAX_PIECE_CALLS = 500  # `piece_calls` of one program, the longest runs first: well within the executor's bounds
MAX_SOURCE_WORDS = 10  # words of a source: in-line noise is a label, a link or a byline, not a sentence
_GLUED = re.compile(r"[a-z][A-Z]|\d[^\W\d_]{2,}|[^\W\d_]{2,}\d")  # words an extractor ran together
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_LOOSE = Guards(min_word_ratio=0.0, min_words=0, max_errors=None)  # the check runs calls, not guards


def words(text: str) -> list[str]:
    """Normalized word tokens: NFKC, case-folded runs of letters and digits; each CJK character is a token."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def word_spans(line: str) -> list[tuple[int, int]] | None:
    """The (start, end) characters in `line` of each of its `words`, in order; None when the raw text's tokens
    do not map one to one onto them (a character NFKC splits into several words, such as '½')."""
    spans = []
    for match in _WORD.finditer(line):
        count = len(words(match.group()))
        if count > 1:
            return None
        if count == 1:
            spans.append(match.span())
    return spans if len(spans) == len(words(line)) else None


def noise_sources(line: str, noise: Sequence[bool]) -> list[str]:
    """The candidate sources of one kept line, from one flag per `word_spans` word (True: noise): each maximal
    run of whitespace-separated pieces without a content word that holds a noise word, with the space before
    it (or, at the line's start, the space after it). Separator pieces ('|', '»') go with the run."""
    spans = word_spans(line)
    if spans is None or len(spans) != len(noise) or not any(noise) or all(noise):
        return []
    pieces = []  # (start, end, kind): kind 'content', 'noise' or 'mark' (no word)
    for piece in re.finditer(r"\S+", line):
        inside = [
            flag for (start, end), flag in zip(spans, noise, strict=True) if start < piece.end() and end > piece.start()
        ]
        kind = "mark" if not inside else "noise" if all(inside) else "content"
        pieces.append((piece.start(), piece.end(), kind))
    sources = []
    index = 0
    while index < len(pieces):
        if pieces[index][2] == "content":
            index += 1
            continue
        end = index
        while end < len(pieces) and pieces[end][2] != "content":
            end += 1
        run = pieces[index:end]
        if any(kind == "noise" for _, _, kind in run):
            if index == 0:  # at the start: up to the content that follows
                sources.append(line[run[0][0] : pieces[end][0]])
            else:  # after content: from the end of that content, the next content keeps its space
                sources.append(line[pieces[index - 1][1] : run[-1][1]])
        index = end
    return [source for source in sources if _specific(source)]


def _specific(source: str) -> bool:
    body = source.strip(" ")
    return (
        len(body.replace(" ", "")) >= MIN_SOURCE_CHARS
        and len(words(body)) <= MAX_SOURCE_WORDS
        and not _GLUED.search(body)
        and "\n" not in source
        and bool(_WORD.search(body))
        and not re.search(r"\s\s|[^\S ]", source)
    )


@dataclass(frozen=True)
class KeptLine:
    """A line the program keeps, and which of its `word_spans` words are noise."""

    text: str
    spans: list[tuple[int, int]]
    noise: list[bool]


def normalize_calls(
    lines: Sequence[str],
    removed: Sequence[bool],
    noise: Sequence[Sequence[bool] | None],
    protected: str = "",
) -> list[Normalize]:
    """The safe `normalize` calls (module docstring) that delete noise words of the kept lines.

    lines: the document's lines; removed: one flag per line (the program's `remove_lines`); noise: per line,
    one flag per `word_spans` word (True: noise), or None (nothing known: all content); protected: text whose
    word phrases a call may not hold (a gold main content)."""
    kept = []
    for line, gone, flags in zip(lines, removed, noise, strict=True):
        if gone:
            continue
        spans = word_spans(line)
        if spans is None or flags is None or len(flags) != len(spans):
            kept.append(KeptLine(line, spans or [], [False] * len(spans or [])))
        else:
            kept.append(KeptLine(line, spans, list(flags)))
    candidates = {source for line in kept if any(line.noise) for source in noise_sources(line.text, line.noise)}
    guarded = f" {' '.join(words(protected))} "
    whole = set(words(protected))
    taken: list[set[int]] = [set() for _ in kept]  # characters already deleted, per kept line
    calls = []
    for source in sorted(candidates, key=lambda s: (-len(s), s)):  # longest first: a short one may sit inside
        if f" {' '.join(words(source))} " in guarded:
            continue
        places = _occurrences(kept, source)
        if places is None or any(_splits_a_word(kept[row], start, end, whole) for row, start, end in places):
            continue
        if any(taken[row] & set(range(start, end)) for row, start, end in places):
            continue
        for row, start, end in places:
            taken[row].update(range(start, end))
        calls.append(Normalize(source, ""))
    return _checked(kept, calls, taken)


def piece_calls(
    lines: Sequence[str], removed: Sequence[bool], pieces_removed: Sequence[Sequence[bool] | None]
) -> list[Normalize]:
    """The `normalize` calls that delete the removed pieces of kept lines that hold other line breaks
    (`layout.LINE_BREAKS`: a text whose lines end in a lone CR or U+2028 is one line to a program).

    lines: the document's lines; removed: one flag per line; pieces_removed: per line, one flag per piece
    with visible text (True: remove), or None. Each run of removed pieces goes with the breaks after it (at
    the line's end, the break before it). A run's text is deleted where every occurrence of it in the kept
    lines lies inside removed runs, longest first; a run whose text also stands where it is kept (the same
    'Advertisement' piece kept once, removed twice) is then deleted with the kept piece beside it as context
    (`normalize(source_str="Advertisement\\rNext piece", target_str="Next piece")`), again only where every
    occurrence deletes removed text. Nothing kept is ever deleted; at most `MAX_PIECE_CALLS`; checked by
    running the calls."""
    kept: list[KeptLine] = []
    gone: list[set[int]] = []  # the characters of removed runs, per kept line
    runs: list[tuple[int, _Run]] = []
    for line, line_gone, flags in zip(lines, removed, pieces_removed, strict=True):
        if line_gone:
            continue
        kept.append(KeptLine(line, [], []))
        gone.append(set())
        if flags is not None and any(flags) and not all(flags):
            for run in _removed_runs(line, flags):
                runs.append((len(kept) - 1, run))
                gone[-1].update(range(run.start, run.end))
    if not runs:  # no line of several pieces keeps a removed one: the common case, nothing to check
        return []
    taken: list[set[int]] = [set() for _ in kept]
    plain = {kept[row].text[run.start : run.end]: (0, run.end - run.start) for row, run in runs}
    calls = _deleting_calls(plain, kept, gone, taken, MAX_PIECE_CALLS)
    beside = {}  # the runs still standing, with the kept piece beside them
    for row, run in runs:
        if not set(range(run.start, run.end)) <= taken[row]:
            first, last = min(run.start, run.context[0]), max(run.end, run.context[1])
            beside.setdefault(kept[row].text[first:last], (run.start - first, run.end - first))
    calls += _deleting_calls(beside, kept, gone, taken, MAX_PIECE_CALLS - len(calls))
    return _checked(kept, calls, taken)


def _deleting_calls(
    candidates: dict[str, tuple[int, int]],
    kept: Sequence[KeptLine],
    gone: Sequence[set[int]],
    taken: Sequence[set[int]],
    limit: int,
) -> list[Normalize]:
    """Up to `limit` calls, longest source first, each deleting `source[cut_start:cut_end]` of its
    candidates (source: (cut_start, cut_end)) where `_deletions` allows; what they delete is added to `taken`."""
    calls: list[Normalize] = []
    for source, (cut_start, cut_end) in sorted(candidates.items(), key=lambda item: (-len(item[0]), item[0])):
        if len(calls) == limit:
            break
        if deletes := _deletions(kept, gone, taken, source, cut_start, cut_end):
            for row, span in deletes:
                taken[row].update(span)
            calls.append(Normalize(source, source[:cut_start] + source[cut_end:]))
    return calls


def _deletions(
    kept: Sequence[KeptLine],
    gone: Sequence[set[int]],
    taken: Sequence[set[int]],
    source: str,
    cut_start: int,
    cut_end: int,
) -> list[tuple[int, set[int]]]:
    """The characters a call deletes (`source[cut_start:cut_end]` at each occurrence still standing), per kept
    row; none when an occurrence would delete a character outside removed runs (`gone`) or overlaps what an
    earlier call deletes (`taken`) without vanishing with it."""
    deletes = []
    for row, line in enumerate(kept):
        for start in _finds(line.text, source):
            cut = set(range(start + cut_start, start + cut_end))
            if cut <= taken[row]:  # deleted by an earlier call: this occurrence is gone before this one runs
                continue
            if not cut <= gone[row] or taken[row] & set(range(start, start + len(source))):
                return []
            deletes.append((row, cut))
    return deletes


@dataclass(frozen=True)
class _Run:
    """A run of removed pieces in a line (`_removed_runs`): its characters, and those of the kept piece
    beside it (after it; before it at the line's end)."""

    start: int
    end: int
    context: tuple[int, int]


def _removed_runs(line: str, flags: Sequence[bool]) -> list[_Run]:
    """Each run of removed pieces in `line` (`piece_calls`); a blank piece goes with the run around it, a
    run of blank pieces alone is no run, and the line's own last break stays. No run when `flags` are not one
    per visible piece: the line keeps all its pieces."""
    bounds, start = [], 0  # (piece start, piece end) of each piece between breaks
    for match in LINE_BREAKS.finditer(line):
        bounds.append((start, match.start()))
        start = match.end()
    bounds.append((start, len(line)))
    visible = [index for index, (start, end) in enumerate(bounds) if canonical_line(line[start:end])]
    if len(visible) != len(flags):
        return []
    marks: list[bool | None] = [None] * len(bounds)
    for index, flag in zip(visible, flags, strict=True):
        marks[index] = bool(flag)
    runs, index = [], 0
    while index < len(bounds):
        if marks[index] is False:
            index += 1
            continue
        end = index
        while end < len(bounds) and marks[end] is not False:
            end += 1
        removed = [i for i in range(index, end) if marks[i]]
        if removed and end < len(bounds):  # up to the next kept piece
            runs.append(_Run(bounds[index][0], bounds[end][0], bounds[end]))
        elif removed:  # at the line's end: from the end of the last kept piece to the last removed one's end
            runs.append(_Run(bounds[index - 1][1], bounds[removed[-1]][1], bounds[index - 1]))
        index = end
    return runs


def _finds(text: str, source: str) -> list[int]:
    """The starts of the occurrences of `source` in `text` that `str.replace` would replace."""
    starts, start = [], text.find(source)
    while start >= 0:
        starts.append(start)
        start = text.find(source, start + len(source))
    return starts


def _occurrences(kept: Sequence[KeptLine], source: str) -> list[tuple[int, int, int]] | None:
    """(kept row, start, end) of each occurrence `str.replace` would delete; None when one covers a content
    word or touches one only in part."""
    places = []
    for row, line in enumerate(kept):
        for start in _finds(line.text, source):
            end = start + len(source)
            for (word_start, word_end), is_noise in zip(line.spans, line.noise, strict=True):
                overlaps = word_start < end and word_end > start
                inside = start <= word_start and word_end <= end
                if overlaps and not (is_noise and inside):
                    return None
            places.append((row, start, end))
    return places


def _splits_a_word(line: KeptLine, start: int, end: int, whole: set[str]) -> bool:
    """Whether `line.text[start:end]` holds a word the extractor broke that the gold (`whole`) holds intact,
    which is not noise: two neighbours (with the words just before and after it) that run together make a
    whole word ('business es', 'C innamon'), letters spaced out ('M a ster'), or a whole word with one or two
    characters of broken encoding stuck to it ('editionâ')."""
    inside = [i for i, (s, e) in enumerate(line.spans) if start <= s and e <= end]
    if not inside or not whole:
        return False
    first, last = max(inside[0] - 1, 0), min(inside[-1] + 1, len(line.spans) - 1)
    tokens = [words(line.text[s:e])[0] for s, e in line.spans[first : last + 1]]
    if any(left + right in whole for left, right in itertools.pairwise(tokens)):
        return True
    own = [words(line.text[s:e])[0] for s, e in (line.spans[i] for i in inside)]
    letters = [len(token) == 1 and token.isalpha() for token in own]
    spaced = any(a and b for a, b in itertools.pairwise(letters))  # 'M a ster': letters spaced out
    garbled = any(len(t) > 4 and (t[:-1] in whole or t[:-2] in whole) for t in own)  # 'editionâ', 'businessÂ'
    return spaced or garbled


def _checked(kept: Sequence[KeptLine], calls: list[Normalize], taken: Sequence[set[int]]) -> list[Normalize]:
    """`calls` when the executor, run on the kept text, deletes exactly the characters of `taken`; else none
    (deletions that join text into a new occurrence of a later call's source, a rare case)."""
    if not calls:
        return []
    text = "\n".join(line.text for line in kept)
    expected = "\n".join(
        "".join(char for index, char in enumerate(line.text) if index not in deleted)
        for line, deleted in zip(kept, taken, strict=True)
    )
    result = execute_chunk(text, Program(tuple(calls)), guards=_LOOSE)
    return calls if result.text == expected and not result.errors else []


def apply_normalize(lines: Sequence[str], calls: Sequence[Normalize]) -> list[str]:
    """The lines with every call's source deleted (replaced), in order, as the executor does to kept text."""
    out = list(lines)
    for call in calls:
        out = [line.replace(call.source, call.target) for line in out]
    return out


def calls_in(lines: Sequence[str], removed: Sequence[bool], sources: Sequence[str]) -> list[Normalize]:
    """A `normalize` call for each of `sources` that occurs in a line of `lines` not removed (what a chunk's
    program deletes of the document's in-line noise)."""
    kept = [line for line, gone in zip(lines, removed, strict=True) if not gone]
    return [Normalize(source) for source in sources if any(source in line for line in kept)]


def with_normalize(program: Program, calls: Sequence[Normalize]) -> Program:
    """`program` (line removals, or `keep_chunk()`) followed by `calls`; `keep_chunk()` goes when calls come."""
    if not calls:
        return program
    kept = tuple(call for call in program.calls if not isinstance(call, KeepChunk))
    return Program(kept + tuple(calls))
