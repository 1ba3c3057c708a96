"""What a document's text shows at a glance, read by a doc probe beside its pooled line states.

Quality raters judge prose: sentences that end, ordinary words between them, few digits, capitals and
symbols, little repetition, enough of it. A frozen backbone's states read at each line's last token carry
that only vaguely, and a couple of hundred labelled documents cannot teach a probe to find it there, so
these statistics say it directly. Each line's statistics are averaged with the same weights as its
states — the line head's P(content) — so they describe the text that would be kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from proxkit.rules import TERMINAL_PUNCTUATION

# Common English function words: prose holds many, menus, tables and keyword lists few. The doc probe only
# judges documents in the languages it was fitted in (`TaggerConfig.doc_languages`).
_FUNCTION_WORDS_TEXT = """
a about after all also an and any are as at be because been but by can could do for from had has have he her
his how i if in into is it its just like me more my no not now of on one only or other our out she so some than
that the their them then there these they this to up us was we were what when which who will with would you your
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())
_WORD_EDGES = ".,;:!?\"'()[]{}\u201c\u201d\u2018\u2019\u00ab\u00bb"  # with curly quotes and guillemets
_LIST_MARKS = ("\u2022", "\u00b7", "-", "\u2013", "*", "|", ">", "#")  # bullets, dashes, table rules, quotes
DOCUMENT_STATISTICS = 13
_COUNTS = ("lines", "words", "word_chars", "function_words", "letter_words", "marks", "chars", "digits", "capitals",
           "terminal", "listed", "short", "repeated")  # fmt: skip


def line_counts(line: str, repeated: bool = False) -> dict[str, float]:
    """What `document_statistics` counts in one line (`repeated`: it repeats an earlier line)."""
    text = line.strip()
    words = text.split()
    return {
        "lines": 1.0,
        "words": len(words),
        "word_chars": sum(len(word) for word in words),
        "function_words": sum(word.lower().strip(_WORD_EDGES) in FUNCTION_WORDS for word in words),
        "letter_words": sum(any(c.isalpha() for c in word) for word in words),
        "marks": text.count("...") + text.count("\u2026") + text.count("#"),
        "chars": len(text),
        "digits": sum(c.isdigit() for c in text),
        "capitals": sum(c.isupper() for c in text),
        "terminal": float(text.endswith(TERMINAL_PUNCTUATION)),
        "listed": float(text.startswith(_LIST_MARKS)),
        "short": float(len(words) < 4),
        "repeated": float(repeated),
    }


def document_statistics(lines: Sequence[str], content: torch.Tensor) -> torch.Tensor:
    """[DOCUMENT_STATISTICS] of `lines`, each line counted with its weight in `content` ([n_lines], its
    P(content)): among the words, their mean length and the shares of function words, of words with a
    letter, and of ellipses and hashes per word; among the characters, the shares of digits and capitals;
    among the lines, the shares ending in terminal punctuation, starting with a list or table mark, of
    fewer than 4 words, and repeating an earlier line; the mean words per line; the log of the words and
    of the lines."""
    if len(lines) != len(content):
        raise ValueError(f"{len(lines)} lines but {len(content)} content weights")
    seen: set[str] = set()
    rows = []
    for line in lines:
        key = " ".join(line.lower().split())
        counts = line_counts(line, key in seen)
        seen.add(key)
        rows.append([counts[name] for name in _COUNTS])
    weights = content.detach().float().reshape(-1, 1)
    totals = dict(
        zip(
            _COUNTS,
            (weights * torch.tensor(rows, dtype=torch.float32).reshape(-1, len(_COUNTS))).sum(0).tolist(),
            strict=True,
        )
    )

    def share(part: str, whole: str) -> float:
        return totals[part] / totals[whole] if totals[whole] > 1e-6 else 0.0

    return torch.tensor(
        [
            share("word_chars", "words"),
            share("function_words", "words"),
            share("letter_words", "words"),
            share("marks", "words"),
            share("digits", "chars"),
            share("capitals", "chars"),
            share("terminal", "lines"),
            share("listed", "lines"),
            share("short", "lines"),
            share("repeated", "lines"),
            share("words", "lines"),
            math.log1p(totals["words"]),
            math.log1p(totals["lines"]),
        ]
    )
