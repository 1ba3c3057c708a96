"""Run programs on documents: (text, program, mode) → Result. Pure functions, no I/O, never raise on
program content.

Both modes share the guards of PROX_SPEC §3 (drop when ≤ 5% of the words or ≤ 10 words remain; ignore
the program when it has 2 or more errors). They differ where the reference is defective:

- order: reference applies every normalize to the whole text, then removes lines numbered on the
  *normalized* text; strict removes the lines the model saw, then normalizes.
- a normalize source that is not found: reference, a silent no-op; strict, a `normalize_not_found` error
  (unless the source sat only in removed lines).
- ranges: reference counts errors on merged ranges; strict clips and reports each range past the end.
- too many errors: both ignore the program, but the reference's ≤ 10-word guard still reads the edited
  text; strict guards read the original that is kept.
- an empty document: the reference crashes (division by zero); both modes here drop it (too few words).

Programs are untrusted, so in both modes a program over one of the `Bounds` (calls, normalize calls,
replacements per call, output size) gets an `over_limit` error and is ignored: the original text is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import compress

from proxkit.program.ops import (
    DropDoc,
    ErrorKind,
    KeepChunk,
    KeepDoc,
    Mode,
    Normalize,
    Program,
    ProgramError,
    RemoveAllLines,
    RemoveLines,
    Stage,
)
from proxkit.program.parse import parse_program

# every call kind, always counted in a record's `stats.calls` so that every record has the same columns
# (a Parquet writer fixes its schema on the first batch)
CALL_NAMES = tuple(
    dict.fromkeys(call.name for call in (KeepDoc, DropDoc, RemoveLines, RemoveAllLines, Normalize, KeepChunk))
)


class DropReason(StrEnum):
    """Why a document was dropped."""

    DOC_PROGRAM = "doc_program"  # the document program said drop_doc()
    LOW_WORD_RATIO = "low_word_ratio"  # the chunk program left too small a share of the words
    TOO_FEW_WORDS = "too_few_words"  # too few words left to be worth keeping


@dataclass(frozen=True, slots=True)
class Guards:
    """The safety rules applied after a chunk program.

    min_word_ratio: drop when words after / words before ≤ this (reference 0.05).
    min_words: drop when ≤ this many words remain (reference 10).
    max_errors: ignore the whole program (keep the original text) when it has at least this many errors
        (reference 2); None applies every valid call whatever the errors.
    """

    min_word_ratio: float = 0.05
    min_words: int = 10
    max_errors: int | None = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_word_ratio <= 1.0:
            raise ValueError(f"min_word_ratio must be within [0, 1], got {self.min_word_ratio}")
        if self.min_words < 0:
            raise ValueError(f"min_words must be >= 0, got {self.min_words}")
        if self.max_errors is not None and self.max_errors < 1:
            raise ValueError(f"max_errors must be >= 1 or None, got {self.max_errors}")


@dataclass(frozen=True, slots=True)
class Bounds:
    """What one chunk program may do to one document, so that no program costs unbounded memory or time.

    max_calls: calls in the program. max_normalize_calls: `normalize` calls among them.
    max_replacements: occurrences one `normalize` may replace.
    max_growth / growth_slack: the text may never grow past max_growth * its length + growth_slack chars.
    """

    max_calls: int = 10_000
    max_normalize_calls: int = 1_000
    max_replacements: int = 10_000
    max_growth: float = 2.0
    growth_slack: int = 1_000

    def max_chars(self, text: str) -> int:
        return int(self.max_growth * len(text)) + self.growth_slack


@dataclass(frozen=True, slots=True)
class ExecutionStats:
    """What a program did to one document."""

    words_before: int
    words_after: int
    lines_before: int
    lines_removed: int = 0
    normalize_applied: int = 0
    normalize_missed: int = 0
    calls: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome for one document: the refined text ("" when dropped), the decision and what happened."""

    text: str
    dropped: bool
    reason: DropReason | None
    errors: tuple[ProgramError, ...]
    stats: ExecutionStats
    program_ignored: bool = False  # the program had too many errors: the original text was kept

    def to_dict(self) -> dict[str, object]:
        stats = self.stats
        return {
            "text": self.text,
            "dropped": self.dropped,
            "reason": None if self.reason is None else str(self.reason),
            "errors": [error.to_dict() for error in self.errors],
            "stats": {
                "words_before": stats.words_before,
                "words_after": stats.words_after,
                "lines_before": stats.lines_before,
                "lines_removed": stats.lines_removed,
                "normalize_applied": stats.normalize_applied,
                "normalize_missed": stats.normalize_missed,
                "calls": dict.fromkeys(CALL_NAMES, 0) | dict(stats.calls),
                "program_ignored": self.program_ignored,
            },
        }


def execute(
    text: str,
    doc_program: str | Program | None = None,
    chunk_program: str | Program | None = None,
    *,
    mode: Mode = Mode.STRICT,
    guards: Guards = Guards(),
    bounds: Bounds = Bounds(),
) -> Result:
    """Run a document's doc program, then (unless it dropped the document) its chunk program."""
    words = len(text.split())  # the costliest step on a long page: done once per document
    doc = None if doc_program is None else _run_doc(text, _as_program(doc_program, Stage.DOC, mode), words)
    if chunk_program is None or (doc is not None and doc.dropped):
        return doc or Result(text, False, None, (), ExecutionStats(words, words, _count_lines(text)))
    chunk = _run_chunk(text, _as_program(chunk_program, Stage.CHUNK, mode), Mode(mode), guards, bounds, words)
    if doc is None:
        return chunk
    calls = doc.stats.calls | chunk.stats.calls
    return replace(chunk, errors=doc.errors + chunk.errors, stats=replace(chunk.stats, calls=calls))


def execute_doc(text: str, program: str | Program, *, mode: Mode = Mode.STRICT) -> Result:
    """The document stage: keep the text unchanged or drop it. The first decision wins."""
    return _run_doc(text, _as_program(program, Stage.DOC, mode), len(text.split()))


def execute_chunk(
    text: str, program: str | Program, *, mode: Mode = Mode.STRICT, guards: Guards = Guards(), bounds: Bounds = Bounds()
) -> Result:
    """The chunk stage: remove lines and normalize strings, then apply the guards."""
    program = _as_program(program, Stage.CHUNK, mode)
    return _run_chunk(text, program, Mode(mode), guards, bounds, len(text.split()))


def _as_program(program: str | Program, stage: Stage, mode: Mode) -> Program:
    return program if isinstance(program, Program) else parse_program(program, stage, mode)


def _count_lines(text: str) -> int:
    return text.count("\n") + 1


def _run_doc(text: str, program: Program, words: int) -> Result:
    decisions = [(line, call) for line, call in program.numbered() if isinstance(call, (KeepDoc, DropDoc))]
    errors = list(program.errors)
    for line, call in decisions[1:]:
        if type(call) is not type(decisions[0][1]):
            message = f"{call.render()} contradicts {decisions[0][1].render()} on line {decisions[0][0]}"
            errors.append(ProgramError(ErrorKind.CONFLICTING_DECISION, line, message, Stage.DOC))
    dropped = bool(decisions) and isinstance(decisions[0][1], DropDoc)
    stats = ExecutionStats(words, 0 if dropped else words, _count_lines(text), calls=program.call_counts())
    if dropped:
        return Result("", True, DropReason.DOC_PROGRAM, tuple(errors), stats)
    return Result(text, False, None, tuple(errors), stats)


@dataclass(slots=True)
class _Edit:
    """A chunk program's edit of one document, before the guards."""

    text: str
    errors: list[ProgramError]
    lines_before: int = 0
    lines_removed: int = 0
    words_removed: int = 0  # words in the removed lines
    applied: int = 0  # normalize calls whose source was found
    missed: int = 0
    over_limit: bool = False  # a call went past the bounds: the program is ignored

    def error(self, kind: ErrorKind, line: int, message: str) -> None:
        self.errors.append(ProgramError(kind, line, message, Stage.CHUNK))

    def normalize(self, call: Normalize, line: int, bounds: Bounds, max_chars: int) -> bool:
        """Apply one normalize within the bounds; False when its source is not in the text."""
        occurrences = self.text.count(call.source)
        if not occurrences:
            self.missed += 1
            return False
        grown = len(self.text) + occurrences * (len(call.target) - len(call.source))
        if occurrences > bounds.max_replacements or grown > max_chars:
            what = f"{occurrences} replacements" if occurrences > bounds.max_replacements else f"{grown} chars"
            self.over(line, f"{call.render()[:80]} would make {what}: the program is ignored")
        else:
            self.text = self.text.replace(call.source, call.target)
            self.applied += 1
        return True

    def over(self, line: int, message: str) -> None:
        self.error(ErrorKind.OVER_LIMIT, line, message)
        self.over_limit = True

    def remove(self, lines: list[str], removed: bytearray) -> str:
        """Join the lines not marked removed, tallying what went."""
        self.lines_removed = removed.count(1)
        self.words_removed = len(" ".join(compress(lines, removed)).split())
        return "\n".join(compress(lines, removed.translate(_FLIP)))


_FLIP = bytes([1, 0]) + bytes(254)  # maps a removal mask to a keep mask


def _run_chunk(text: str, program: Program, mode: Mode, guards: Guards, bounds: Bounds, words_before: int) -> Result:
    edit = _bounded_edit(text, program, mode, bounds)
    errors = tuple(edit.errors)
    trusted = not edit.over_limit and (guards.max_errors is None or len(errors) < guards.max_errors)
    # "\n" separates words, so without a normalize the words left are the words of the kept lines
    words_after = len(edit.text.split()) if edit.applied else words_before - edit.words_removed
    calls = program.call_counts()
    if trusted:
        stats = ExecutionStats(
            words_before, words_after, edit.lines_before, edit.lines_removed, edit.applied, edit.missed, calls
        )
    else:  # the program is ignored; the reference still reads the edited text for the ≤ 10-word guard
        if mode is Mode.STRICT or edit.over_limit:
            words_after = words_before
        stats = ExecutionStats(words_before, words_before, edit.lines_before, 0, 0, edit.missed, calls)
    if trusted and words_before and words_after / words_before <= guards.min_word_ratio:
        return _dropped(DropReason.LOW_WORD_RATIO, errors, stats, program_ignored=False)
    if words_after <= guards.min_words:
        return _dropped(DropReason.TOO_FEW_WORDS, errors, stats, program_ignored=not trusted)
    if trusted:
        return Result(edit.text, False, None, errors, stats)
    return Result(text, False, None, errors, stats, program_ignored=True)


def _dropped(reason: DropReason, errors: tuple[ProgramError, ...], stats: ExecutionStats, **flags: bool) -> Result:
    return Result("", True, reason, errors, replace(stats, words_after=0), **flags)


def removed_lines(line_count: int, program: Program) -> list[bool]:
    """Which of a document's lines the program's valid `remove_lines` calls remove (strict semantics)."""
    return [bool(flag) for flag in _strict_removal(line_count, program, _Edit("", []))]


def _strict_removal(line_count: int, program: Program, edit: _Edit) -> bytearray:
    """The removal mask of the strict mode, reporting ranges past the end into `edit`."""
    last = line_count - 1
    removed = bytearray(line_count)
    for line, call in program.numbered():
        if isinstance(call, RemoveAllLines):
            removed = bytearray(b"\x01" * line_count)
        elif isinstance(call, RemoveLines):
            if call.start > last:
                edit.error(ErrorKind.OUT_OF_RANGE, line, f"line {call.start} is past the last line {last}: ignored")
                continue
            if call.end > last:
                edit.error(ErrorKind.OUT_OF_RANGE, line, f"line {call.end} is past the last line {last}: clipped")
            end = min(call.end, last)
            removed[call.start : end + 1] = b"\x01" * (end + 1 - call.start)
    return removed


def _bounded_edit(text: str, program: Program, mode: Mode, bounds: Bounds) -> _Edit:
    """The program's edit, or an empty edit with an `over_limit` error when it has too many calls."""
    normalizes = sum(isinstance(call, Normalize) for call in program.calls)
    if len(program.calls) > bounds.max_calls or normalizes > bounds.max_normalize_calls:
        edit = _Edit(text, list(program.errors), lines_before=_count_lines(text))
        counts = f"{len(program.calls)} calls, {normalizes} normalize"
        limits = f"{bounds.max_calls} calls, {bounds.max_normalize_calls} normalize"
        edit.over(1, f"the program has {counts} (at most {limits}): it is ignored")
        return edit
    edit = _edit_reference if mode is Mode.REFERENCE else _edit_strict
    return edit(text, program, bounds)


def _edit_strict(text: str, program: Program, bounds: Bounds) -> _Edit:
    lines = text.split("\n")
    edit = _Edit(text, list(program.errors), lines_before=len(lines))
    removed = _strict_removal(len(lines), program, edit)
    edit.text = edit.remove(lines, removed) if 1 in removed else text
    max_chars = bounds.max_chars(text)
    for line, call in program.numbered():
        if not isinstance(call, Normalize):
            continue
        if not edit.normalize(call, line, bounds, max_chars) and call.source not in text:
            edit.error(ErrorKind.NORMALIZE_NOT_FOUND, line, f"{call.source[:60]!r} is not in the document")
        if edit.over_limit:
            break
    return edit


def _edit_reference(text: str, program: Program, bounds: Bounds) -> _Edit:
    edit = _Edit(text, list(program.errors), lines_before=_count_lines(text))
    ranges: list[tuple[int, int, int]] = []  # (start, end, program line) in program order
    removal: list[tuple[int, int]] = []  # what is removed; remove_lines(all=True) resets it
    max_chars = bounds.max_chars(text)
    for line, call in program.numbered():
        if isinstance(call, Normalize):
            edit.normalize(call, line, bounds, max_chars)
            if edit.over_limit:
                return edit
        elif isinstance(call, RemoveLines):
            ranges.append((call.start, call.end, line))
            removal.append((call.start, call.end))
        elif isinstance(call, RemoveAllLines):
            removal = [(0, edit.lines_before - 1)]
    lines = edit.text.split("\n")
    last = len(lines) - 1
    removed = bytearray(len(lines))
    for start, end in removal:
        start, end = max(start, 0), min(end, last)
        if start <= end:
            removed[start : end + 1] = b"\x01" * (end + 1 - start)
    for start, end, line in _merge_like_reference(ranges):
        if start > last:
            edit.error(ErrorKind.OUT_OF_RANGE, line, f"line {start} is past the last line {last}")
        elif end > last:
            edit.error(ErrorKind.OUT_OF_RANGE, line, f"line {end} is past the last line {last}")
    if 1 in removed:
        edit.text = edit.remove(lines, removed)
    return edit


def _merge_like_reference(ranges: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Merge ranges sorted by start, touching ones included, as the authors did before counting range errors
    (a reversed range merges by the same rule, however odd)."""
    merged: list[tuple[int, int, int]] = []
    for start, end, line in sorted(ranges, key=lambda item: item[0]):
        if merged and start <= merged[-1][1] + 1:
            previous = merged[-1]
            merged[-1] = (previous[0], max(previous[1], end), previous[2])
        else:
            merged.append((start, end, line))
    return merged
