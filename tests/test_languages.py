"""The language guess that decides where a tagger trusts its head and where the C4 rule writes."""

import json
from pathlib import Path

import pytest

from proxkit.languages import foreign_language, guess_language, reads_as

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
    "ru": "Совет сообщил, что новая библиотека откроется весной и будет бесплатной для всех жителей города.",
}
# Finnish infobox rows: almost no function words, yet plainly Finnish (the function-word guess missed these)
FINNISH_TABLE = [
    "Syntynyt 3. marraskuuta 1953 Pittsburgh, Pennsylvania",
    "Kansalaisuus yhdysvaltalainen",
    "Ammatti koomikko, näyttelijä, televisiojuontaja",
    "Puoliso Ali Espley (1988-)",
    "Lapset kaksi poikaa",
]


@pytest.mark.parametrize(("language", "text"), list(SAMPLES.items()))
def test_each_language_is_told(language: str, text: str) -> None:
    assert guess_language([text]) == language


def test_thin_evidence_counts_as_readable() -> None:
    assert guess_language(["Home | About | Contact"]) is None  # too few letters to judge
    assert reads_as(["Home | About"], ["en"]) and not reads_as([SAMPLES["ru"]], ["en", "de"])
    assert reads_as([SAMPLES["de"]], ["en", "de"]) and not reads_as([SAMPLES["fi"]], ["en", "de"])


def test_rows_without_function_words_are_still_told() -> None:
    assert foreign_language(FINNISH_TABLE, ["en", "de"]) == "fi"
    assert foreign_language(FINNISH_TABLE, ["en", "fi"]) is None


@pytest.mark.skipif(not LINE_LABELS.is_dir(), reason="../shared is absent")
def test_the_human_labelled_documents_are_mostly_told_right() -> None:
    for language in ("en", "de", "es", "fi", "fr", "sv"):
        documents = [d for path in (LINE_LABELS / language).glob("*.json") for d in json.loads(path.read_text())]
        guesses = [guess_language(document["text"]) for document in documents]
        judged = [guess for guess in guesses if guess is not None]
        assert len(judged) >= 0.8 * len(documents), language
        assert sum(guess == language for guess in judged) >= 0.9 * len(judged), language
