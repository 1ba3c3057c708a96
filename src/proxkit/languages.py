"""Which language a text is written in, well enough to tell whether a refiner validated in some languages can
read it: py3langid's character n-gram classifier (97 languages, ISO 639-1 codes), trusted only when it is
confident.

A text with too few letters, or one the classifier is unsure of, counts as readable (`reads_as`): nothing is
taken from a refiner without evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

MIN_LETTERS = 40  # letters seen before a text is judged at all
MIN_CONFIDENCE = 0.9  # the classifier's probability (normalised over its languages) needed to name a language


@cache
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def guess_language(lines: Iterable[str]) -> str | None:
    """The language the lines look written in (an ISO 639-1 code), or None when they hold too little
    evidence: fewer than `MIN_LETTERS` letters, or a guess below `MIN_CONFIDENCE`."""
    text = "\n".join(lines)
    if sum(char.isalpha() for char in text) < MIN_LETTERS:
        return None
    language, confidence = _identifier().classify(text)
    return language if confidence >= MIN_CONFIDENCE else None


def foreign_language(lines: Iterable[str], languages: Iterable[str]) -> str | None:
    """The language the lines are guessed to be in when it is none of `languages`; None when it is one of
    them or when there is too little evidence to say."""
    guess = guess_language(lines)
    return None if guess is None or guess in set(languages) else guess


def reads_as(lines: Iterable[str], languages: Iterable[str]) -> bool:
    """Whether the lines are in one of `languages`, or hold too little evidence to say they are not."""
    return foreign_language(lines, languages) is None
