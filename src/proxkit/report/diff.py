"""What happened to each line of a document: kept, removed, or edited (a normalize), found by diffing the
raw text with the final text line by line — it shows what the run did, whatever mode or program did it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum


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

    def word_diff(self) -> list[tuple[str, str]]:
        """For an edited line: (kind, text) spans, kind one of equal / delete / insert."""
        before, after = self.before or "", self.after or ""
        matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
        spans: list[tuple[str, str]] = []
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag == "equal":
                spans.append(("equal", before[a0:a1]))
                continue
            if a1 > a0:
                spans.append(("delete", before[a0:a1]))
            if b1 > b0:
                spans.append(("insert", after[b0:b1]))
        return spans


def line_changes(raw: str, final: str | None) -> list[LineChange]:
    """Each raw line's fate given the final text; `final` None (a dropped document) removes every line."""
    before = raw.split("\n")
    if final is None:
        return [LineChange(LineFate.REMOVED, line, None) for line in before]
    after = final.split("\n") if final else []
    changes: list[LineChange] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            changes += [LineChange(LineFate.KEPT, line, line) for line in before[a0:a1]]
        elif tag == "delete":
            changes += [LineChange(LineFate.REMOVED, line, None) for line in before[a0:a1]]
        elif tag == "insert":
            changes += [LineChange(LineFate.ADDED, None, line) for line in after[b0:b1]]
        else:
            changes += _pair_edits(before[a0:a1], after[b0:b1])
    return changes


def _pair_edits(before: list[str], after: list[str]) -> list[LineChange]:
    """A block of raw lines replaced by final lines: each final line is the edit of the most similar raw line
    after the previous pair (order kept); raw lines left unpaired were removed, final ones added."""
    changes: list[LineChange] = []
    start = 0
    for line in after:
        scores = [difflib.SequenceMatcher(a=old, b=line, autojunk=False).ratio() for old in before[start:]]
        best = max(range(len(scores)), key=scores.__getitem__, default=None)
        if best is None or scores[best] < 0.5:
            changes.append(LineChange(LineFate.ADDED, None, line))
            continue
        changes += [LineChange(LineFate.REMOVED, old, None) for old in before[start : start + best]]
        changes.append(LineChange(LineFate.EDITED, before[start + best], line))
        start += best + 1
    changes += [LineChange(LineFate.REMOVED, old, None) for old in before[start:]]
    return changes
