"""Line rules shared by the tagger's features, the metrics and the baselines: C4's line filter."""

from __future__ import annotations

from collections.abc import Sequence

TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "\u201d", "\u2019")  # with closing curly quotes


def c4_line_rule(lines: Sequence[str]) -> list[bool]:
    """Keep a line when it ends in terminal punctuation and has at least 3 words (C4's line filter)."""
    return [line.rstrip().endswith(TERMINAL_PUNCTUATION) and len(line.split()) >= 3 for line in lines]
