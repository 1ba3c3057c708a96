"""The ProX program language as data: one frozen dataclass per call, typed errors, and Program.

A program is what a refining model writes for a document. It is never executed as code: the parser turns
its text into these values and the executor interprets them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Stage(StrEnum):
    """Which refining stage a call belongs to."""

    DOC = "doc"
    CHUNK = "chunk"


class Mode(StrEnum):
    """How programs are read and run.

    `strict` (default) parses with a real parser and fixes the defects of the authors' executor;
    `reference` reproduces the authors' decisions (PROX_SPEC §3) without ever crashing.
    """

    STRICT = "strict"
    REFERENCE = "reference"


class ErrorKind(StrEnum):
    """Every way a program line can be wrong."""

    SYNTAX = "syntax"  # not a call, or not Python at all
    TRUNCATED = "truncated"  # the program ends inside a call (cut off at the token limit)
    UNKNOWN_CALL = "unknown_call"  # a name that is not in the language
    BAD_ARGUMENTS = "bad_arguments"  # missing, extra, unknown or mistyped arguments
    WRONG_STAGE = "wrong_stage"  # a document call in a chunk program or the reverse
    EMPTY_RANGE = "empty_range"  # remove_lines with line_start > line_end
    OUT_OF_RANGE = "out_of_range"  # remove_lines past the last line of the document
    NORMALIZE_NOT_FOUND = "normalize_not_found"  # the source string is not in the document
    CONFLICTING_DECISION = "conflicting_decision"  # both keep_doc() and drop_doc()
    OVER_LIMIT = "over_limit"  # the program would do more than one program may (see `Bounds`)


@dataclass(frozen=True, slots=True)
class ProgramError:
    """One problem found in a program: its kind, the 1-based program line and a readable message."""

    kind: ErrorKind
    line: int
    message: str
    stage: Stage = Stage.CHUNK

    def to_dict(self) -> dict[str, object]:
        return {"kind": str(self.kind), "line": self.line, "message": self.message, "stage": str(self.stage)}


def quote(value: str) -> str:
    """A double-quoted Python string literal for `value` that `ast` reads back exactly."""
    out = ['"']
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True, slots=True)
class KeepDoc:
    """Keep the document unchanged and go on to the chunk stage."""

    stage: ClassVar[Stage] = Stage.DOC
    name: ClassVar[str] = "keep_doc"

    def render(self) -> str:
        return "keep_doc()"


@dataclass(frozen=True, slots=True)
class DropDoc:
    """Discard the whole document."""

    stage: ClassVar[Stage] = Stage.DOC
    name: ClassVar[str] = "drop_doc"

    def render(self) -> str:
        return "drop_doc()"


@dataclass(frozen=True, slots=True)
class KeepChunk:
    """The chunk needs no change (also spelled `skip_chunk()` and `untouch_doc()`)."""

    stage: ClassVar[Stage] = Stage.CHUNK
    name: ClassVar[str] = "keep_chunk"

    def render(self) -> str:
        return "keep_chunk()"


@dataclass(frozen=True, slots=True)
class RemoveLines:
    """Delete lines `start`..`end`, both inclusive, 0-based, numbered across the whole document."""

    start: int
    end: int
    stage: ClassVar[Stage] = Stage.CHUNK
    name: ClassVar[str] = "remove_lines"

    def render(self) -> str:
        return f"remove_lines(line_start={self.start}, line_end={self.end})"


@dataclass(frozen=True, slots=True)
class RemoveAllLines:
    """Delete every line: `remove_lines(all=True)`, a spelling the authors' executor understands."""

    stage: ClassVar[Stage] = Stage.CHUNK
    name: ClassVar[str] = "remove_lines"

    def render(self) -> str:
        return "remove_lines(all=True)"


@dataclass(frozen=True, slots=True)
class Normalize:
    """Replace every occurrence of the noisy string `source` by `target`."""

    source: str
    target: str = ""
    stage: ClassVar[Stage] = Stage.CHUNK
    name: ClassVar[str] = "normalize"

    def render(self) -> str:
        return f"normalize(source_str={quote(self.source)}, target_str={quote(self.target)})"


Call = KeepDoc | DropDoc | KeepChunk | RemoveLines | RemoveAllLines | Normalize


@dataclass(frozen=True, slots=True)
class Program:
    """The calls read from a program's text, in order, with the errors found while reading it.

    `lines` holds the 1-based program line of each call (parallel to `calls`); empty for a program built
    in code, whose calls are then numbered 1, 2, ...
    """

    calls: tuple[Call, ...] = ()
    errors: tuple[ProgramError, ...] = ()
    lines: tuple[int, ...] = field(default=(), compare=False)

    def numbered(self) -> Iterator[tuple[int, Call]]:
        """Each call with the program line it came from."""
        return zip(self.lines or range(1, len(self.calls) + 1), self.calls, strict=True)

    @classmethod
    def removing(cls, remove: Sequence[bool], first_line: int = 0) -> Program:
        """The chunk program that removes exactly the flagged lines: one `remove_lines` per maximal run
        (numbered from `first_line`), or `keep_chunk()` when nothing is removed."""
        calls: list[Call] = []
        start = None
        for index, gone in enumerate([*remove, False]):
            if gone and start is None:
                start = index
            elif not gone and start is not None:
                calls.append(RemoveLines(first_line + start, first_line + index - 1))
                start = None
        return cls(tuple(calls) or (KeepChunk(),))

    def render(self) -> str:
        """The canonical text of the calls, one per line (the form the refining models are trained on)."""
        return "\n".join(call.render() for call in self.calls)

    def call_counts(self) -> dict[str, int]:
        """How many calls of each kind the program holds, by call name."""
        return dict(Counter(call.name for call in self.calls))
