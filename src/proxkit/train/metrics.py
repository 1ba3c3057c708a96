"""The refining metrics: doc-level F1 (keep positive) and accuracy; chunk-level line-wise F1 over removed
lines (the paper's metric) and over kept lines; content-word F1 of the refined text against the gold
content. The C4 line rule (`proxkit.rules`) is the baseline a chunk refiner has to beat."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from proxkit.inline_noise import apply_normalize
from proxkit.rules import c4_line_rule

__all__ = [
    "F1",
    "accuracy",
    "binary_f1",
    "c4_line_rule",
    "chunk_report",
    "content_word_f1",
    "inline_report",
    "mean",
    "words",
]
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class F1:
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, true_positive: int, predicted: int, actual: int) -> F1:
        """F1 from counts; an empty prediction of an empty truth is perfect."""
        if predicted == 0 and actual == 0:
            return cls(1.0, 1.0, 1.0)
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1)


def binary_f1(predicted: Sequence[bool], actual: Sequence[bool]) -> F1:
    """F1 of the positive class (True) over paired decisions."""
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} predictions for {len(actual)} labels")
    true_positive = sum(p and a for p, a in zip(predicted, actual, strict=True))
    return F1.from_counts(true_positive, sum(predicted), sum(actual))


def accuracy(predicted: Sequence[bool], actual: Sequence[bool]) -> float:
    if len(predicted) != len(actual) or not actual:
        raise ValueError("accuracy needs as many predictions as labels, at least one")
    return sum(p == a for p, a in zip(predicted, actual, strict=True)) / len(actual)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_word_f1(refined: str, gold: str) -> F1:
    """Bag-of-words F1 of the refined text against the gold main content (multiset overlap)."""
    predicted, actual = Counter(words(refined)), Counter(words(gold))
    overlap = sum((predicted & actual).values())
    return F1.from_counts(overlap, sum(predicted.values()), sum(actual.values()))


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def chunk_report(pages: Sequence, removes: Sequence[Sequence[bool]]) -> dict[str, float]:
    """Pages (with `lines`, `remove`, `gold`) against predicted removals: removed-line F1 and kept-line F1
    pooled over lines, and content-word F1 of the kept lines against the gold, averaged per page."""
    predicted = [flag for remove in removes for flag in remove]
    actual = [flag for page in pages for flag in page.remove]
    word_f1 = []
    for page, remove in zip(pages, removes, strict=True):
        refined = "\n".join(line for line, gone in zip(page.lines, remove, strict=True) if not gone)
        word_f1.append(content_word_f1(refined, page.gold or "").f1)
    return {
        "removed_line_f1": round(binary_f1(predicted, actual).f1, 4),
        "kept_line_f1": round(binary_f1([not p for p in predicted], [not a for a in actual]).f1, 4),
        "content_word_f1": round(mean(word_f1), 4),
        "pages": len(pages),
    }


def inline_report(pages: Sequence, removes: Sequence[Sequence[bool]], calls: Sequence[Sequence]) -> dict:
    """What the `normalize` calls (`calls`, per page: objects with `source` and `target`) did on pages (with
    `lines`, `gold`) whose `removes` lines are gone: content-word precision and recall of the kept text
    without and with them (means per page), the gold words they removed (pooled, and as a share of all the
    gold words), the other words they removed (noise), how many calls there were and how many name a source
    that is not in the page (`normalize_not_found` in strict mode)."""
    without_p, without_r, with_p, with_r = [], [], [], []
    content_removed = noise_removed = gold_words = count = not_found = 0
    for page, remove, page_calls in zip(pages, removes, calls, strict=True):
        kept = [line for line, gone in zip(page.lines, remove, strict=True) if not gone]
        edited = apply_normalize(kept, page_calls)
        text = "\n".join(page.lines)
        count += len(page_calls)
        not_found += sum(call.source not in text for call in page_calls)
        before, after = (
            content_word_f1("\n".join(kept), page.gold or ""),
            content_word_f1("\n".join(edited), page.gold or ""),
        )
        without_p.append(before.precision)
        without_r.append(before.recall)
        with_p.append(after.precision)
        with_r.append(after.recall)
        gold = Counter(words(page.gold or ""))
        kept_words, edited_words = Counter(words("\n".join(kept))), Counter(words("\n".join(edited)))
        lost = sum((kept_words & gold).values()) - sum((edited_words & gold).values())
        content_removed += lost
        noise_removed += sum(kept_words.values()) - sum(edited_words.values()) - lost
        gold_words += sum(gold.values())
    return {
        "calls": count,
        "not_found": not_found,
        "content_words_removed": content_removed,
        "content_words_removed_share": round(content_removed / gold_words, 5) if gold_words else 0.0,
        "noise_words_removed": noise_removed,
        "content_word_precision": {"without": round(mean(without_p), 4), "with": round(mean(with_p), 4)},
        "content_word_recall": {"without": round(mean(without_r), 4), "with": round(mean(with_r), 4)},
    }


def words_kept_share(pages: Sequence, removes: Sequence[Sequence[bool]]) -> float:
    """The share of all the pages' words (pooled) on lines that are not removed: on text that is all content
    (a cleaned corpus), what a refiner must keep nearly whole."""
    total = kept = 0
    for page, remove in zip(pages, removes, strict=True):
        for line, gone in zip(page.lines, remove, strict=True):
            count = len(words(line))
            total += count
            kept += 0 if gone else count
    return round(kept / total, 4) if total else 1.0
