"""What happened to each line of a document: kept, removed, or edited (a normalize), found by aligning the
raw text with the final text line by line — it shows what the run did, whatever mode or program did it.

Linear in the document: the final text keeps the raw lines' order, so one pass pairs each raw line with
the final line it became (the same line, an edit of it, or none). Inside an edited line the diff is by
words, bounded per line and per document (DIFF_BUDGET); past the budget a line's changed middle is shown
whole.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

DIFF_BUDGET = 2_000_000  # word pairs compared per document, summed over its edited lines
LINE_DIFF_LIMIT = 250_000  # word pairs compared in one line; a longer edit falls back to prefix/suffix
_TOKENS = re.compile(r"\s+|\S+")


class LineFate(StrEnum):
    KEPT = "kept"
    REMOVED = "removed"
    EDITED = "edited"
    ADDED = "added"  # a line in the final text that is not in the raw one (a normalize that split a line)


@dataclass(frozen=True)
class LineChange:
    fate: LineFate
    before: str | None
    after: str | None
    spans: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def word_diff(self) -> list[tuple[str, str]]:
        """For an edited line: (kind, text) spans, kind one of equal / delete / insert."""
        return list(self.spans)


def line_changes(raw: str, final: str | None) -> list[LineChange]:
    """Each raw line's fate given the final text; `final` None (a dropped document) removes every line."""
    before = raw.split("\n")
    if final is None:
        return [LineChange(LineFate.REMOVED, line, None) for line in before]
    after = final.split("\n") if final else []
    raw_left, final_left = Counter(before), Counter(after)
    budget = [DIFF_BUDGET]
    changes: list[LineChange] = []
    j = 0
    for line in before:
        raw_left[line] -= 1
        if final_left[line] > 0:  # kept; final lines before it that are no raw line's were added
            while after[j] != line:
                changes.append(LineChange(LineFate.ADDED, None, after[j]))
                final_left[after[j]] -= 1
                j += 1
            changes.append(LineChange(LineFate.KEPT, line, line))
            final_left[line] -= 1
            j += 1
        elif j < len(after) and raw_left[after[j]] <= 0 and _similar(line, after[j]):
            changes.append(LineChange(LineFate.EDITED, line, after[j], _word_spans(line, after[j], budget)))
            final_left[after[j]] -= 1
            j += 1
        else:
            changes.append(LineChange(LineFate.REMOVED, line, None))
    changes += [LineChange(LineFate.ADDED, None, line) for line in after[j:]]
    return changes


def _similar(before: str, after: str) -> bool:
    """Whether `after` reads as an edit of `before`: most of its words are words of `before`."""
    words_after = after.split()
    if not words_after:
        return not before.split()
    shared = Counter(before.split()) & Counter(words_after)
    return sum(shared.values()) >= 0.5 * len(words_after)


def _word_spans(before: str, after: str, budget: list[int]) -> tuple[tuple[str, str], ...]:
    """The spans of an edit: by words while the budget lasts, else common prefix, changed middle, suffix."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    cost = len(a) * len(b)
    if cost <= min(LINE_DIFF_LIMIT, budget[0]):
        budget[0] -= cost
        spans: list[tuple[str, str]] = []
        for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag == "equal":
                spans.append(("equal", "".join(a[a0:a1])))
                continue
            if a1 > a0:
                spans.append(("delete", "".join(a[a0:a1])))
            if b1 > b0:
                spans.append(("insert", "".join(b[b0:b1])))
        return tuple(spans)
    prefix = len(_common_prefix(before, after))
    suffix = len(_common_prefix(before[prefix:][::-1], after[prefix:][::-1]))
    parts = [
        ("equal", before[:prefix]),
        ("delete", before[prefix : len(before) - suffix]),
        ("insert", after[prefix : len(after) - suffix]),
        ("equal", before[len(before) - suffix :]),
    ]
    return tuple(part for part in parts if part[1])


def _common_prefix(a: str, b: str) -> str:
    return os.path.commonprefix([a, b])  # noqa: RUF071 -- characters, as wanted here
