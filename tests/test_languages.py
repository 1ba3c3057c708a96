"""The rough language guess that decides where a tagger trusts its head and where the C4 rule writes."""

import json
from pathlib import Path

import pytest

from proxkit.languages import FUNCTION_WORDS, guess_language, latin_share, reads_as

LINE_LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "line_quality_labels"

SAMPLES = {
    "en": "The council said that it would open the new library in the spring, and that it was also planning more.",
    "de": "Der Rat hat gesagt, dass die neue Bibliothek im Frühling eröffnet wird und auch nicht teurer ist.",
    "fr": "Le conseil a dit que la nouvelle bibliothèque sera ouverte au printemps et qu'elle ne sera pas plus chère.",
    "es": "El consejo dijo que la nueva biblioteca se abrirá en primavera y que también será para todos. "
    "Pero el alcalde, que está de viaje, no dijo cuando ni por qué.",
    "sv": "Rådet sa att det nya biblioteket öppnar till våren och att det inte blir dyrare för oss som bor här.",
    "fi": "Valtuusto sanoi, että uusi kirjasto avataan keväällä ja se on myös auki kun sää on hyvä, mutta ei niin. "
    "Hän kertoi, että tämä oli vain alku, jos kaikki menee hyvin.",
}


@pytest.mark.parametrize(("language", "text"), list(SAMPLES.items()))
def test_each_language_is_told_by_its_function_words(language: str, text: str) -> None:
    assert guess_language([text]) == language


def test_scripts_and_thin_evidence() -> None:
    russian = "Совет сообщил, что новая библиотека откроется весной и будет бесплатной для всех жителей города."
    assert guess_language([russian]) == "non-latin" and latin_share(russian) < 0.1
    assert guess_language(["Home | About | Contact"]) is None  # too few letters to judge
    assert guess_language(["Produkte Preise Kontakt Impressum Datenschutz Warenkorb Anmelden Versand"]) is None
    assert reads_as(["Home | About"], ["en"]) and not reads_as([russian], ["en", "de"])
    assert reads_as([SAMPLES["de"]], ["en", "de"]) and not reads_as([SAMPLES["fi"]], ["en", "de"])


def test_no_function_word_belongs_to_two_languages() -> None:
    languages = list(FUNCTION_WORDS)
    for index, first in enumerate(languages):
        for second in languages[index + 1 :]:
            assert not FUNCTION_WORDS[first] & FUNCTION_WORDS[second]


@pytest.mark.skipif(not LINE_LABELS.is_dir(), reason="../shared is absent")
def test_the_human_labelled_documents_are_mostly_told_right() -> None:
    for language in ("en", "de", "es", "fi", "fr", "sv"):
        documents = [d for path in (LINE_LABELS / language).glob("*.json") for d in json.loads(path.read_text())]
        guesses = [guess_language(document["text"]) for document in documents]
        judged = [guess for guess in guesses if guess is not None]
        assert sum(guess == language for guess in judged) >= 0.85 * len(judged), language
