"""Which language a text is written in, roughly enough to tell whether a refiner trained on English can
read it: the script of its letters, then which language's common function words it uses most.

A text with too few words to judge counts as readable (`reads_as`): nothing is taken from a refiner
without evidence.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

# the commonest short words of each language; a word two languages share counts for neither
_WORDS = {
    "en": "the and of to is that it for was with on as are this be by at from have or not but they which you we "
    "his her has an were their been will would there what about can more if when who also had its them than",
    "de": "der die das und ist nicht ein eine zu den mit sich des auf für dem von auch es im werden wird nach bei "
    "oder aus wie noch sind wurde über einer haben kann aber ich sie wir dass nur",
    "fr": "le la les et des est une du pour que qui dans pas sur au par plus ce il sont avec ne se aux mais nous "
    "vous cette ou été être je son sa elle leur comme tout",
    "es": "el los las y del que por un una con para es al lo como más pero sus ya este ha porque esta entre cuando "
    "muy sin sobre también fue hay yo está son",
    "pt": "os em um uma com não da do no na por mais das dos ao mas foi ele ela são está também seu sua pelo isso "
    "você muito",
    "it": "il di che è per non sono della del dei gli nel alla anche più questo ma come si hanno essere molto",
    "nl": "het een van en dat op te zijn voor met niet aan er ook als om maar bij door naar wordt deze wat nog dan",
    "sv": "och att det som är av för med till den har inte om ett men var jag sig från vi så kan man när eller "
    "också detta",
    "da": "og af ikke jeg fra være også efter hvor meget skal blev",
    "no": "og av ikke jeg fra være også etter hvor mye skal ble",
    "fi": "ja on ei että se oli ovat kun mutta tai myös niin hän joka jos kanssa sen ole olla voi vain nyt jo mitä "
    "tämä kuin",
    "pl": "i w nie na się z że do jest jak po ale co od za tak przez",
    "id": "yang dan di ini itu dengan untuk dari dalam tidak akan pada juga ada adalah ke oleh saya bisa",
    "tr": "ve bir bu için ile çok daha gibi olarak ama olan",
}
_ALL = {language: set(words.split()) for language, words in _WORDS.items()}
FUNCTION_WORDS = {
    language: frozenset(words - set().union(*(other for name, other in _ALL.items() if name != language)))
    for language, words in _ALL.items()
}
_WORD = re.compile(r"[^\W\d_]+")
MIN_EVIDENCE = 8  # function words seen before a text is judged by them
MIN_LETTERS = 40  # letters seen before a text is judged by its script


def latin_share(text: str) -> float:
    """The share of the text's letters that are Latin (1.0 for a text without letters)."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return 1.0
    return sum(unicodedata.name(char, "").startswith("LATIN") for char in letters) / len(letters)


def guess_language(lines: Iterable[str]) -> str | None:
    """The language the lines look written in: a code of `FUNCTION_WORDS`, `non-latin` for a mostly non-Latin
    script, or None when they hold too little evidence (few letters, few function words)."""
    text = "\n".join(lines)
    if sum(char.isalpha() for char in text) < MIN_LETTERS:
        return None
    if latin_share(text) < 0.5:
        return "non-latin"
    counts: Counter[str] = Counter()
    for word in _WORD.findall(text.casefold()):
        for language, words in FUNCTION_WORDS.items():
            if word in words:
                counts[language] += 1
    if sum(counts.values()) < MIN_EVIDENCE:
        return None
    return counts.most_common(1)[0][0]


def foreign_language(lines: Iterable[str], languages: Iterable[str]) -> str | None:
    """The language the lines are guessed to be in when it is none of `languages`; None when it is one of
    them or when there is too little evidence to say."""
    guess = guess_language(lines)
    return None if guess is None or guess in set(languages) else guess


def reads_as(lines: Iterable[str], languages: Iterable[str]) -> bool:
    """Whether the lines are in one of `languages`, or hold too little evidence to say they are not."""
    return foreign_language(lines, languages) is None
