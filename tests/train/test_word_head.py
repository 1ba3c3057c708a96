"""The word head: features, training from seed pages, the writer's normalize calls and `prox train word-head`."""

import json
import random

import orjson
import pytest
from typer.testing import CliRunner

from proxkit.annotate.human import chunk_example
from proxkit.cli import app
from proxkit.models import resolve
from proxkit.models.tagger import TaggerConfig
from proxkit.models.word_head import SHAPE_FEATURES, WordHead, line_words
from proxkit.program import Stage
from proxkit.train.evaluate import evaluate_chunk
from proxkit.train.seed import Example, load_seed, write_seed
from proxkit.train.word_head import line_items, train_and_validate_word_head

NOUNS = [
    "council",
    "library",
    "budget",
    "river",
    "bridge",
    "school",
    "harbour",
    "museum",
    "garden",
    "market",
    "station",
    "theatre",
]
VERBS = ["approved", "opened", "repaired", "closed", "funded", "visited", "painted", "rebuilt", "planned", "extended"]
NOISE = ["Share this: Facebook Twitter", "Read more »", "Advertisement", "Print this page | Email"]


def sentence(rng: random.Random) -> str:
    return (
        f"The {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)} near the {rng.choice(NOUNS)} "
        f"on a {rng.choice(['cold', 'warm', 'quiet', 'busy'])} {rng.choice(['Monday', 'Friday', 'morning'])}."
    )


def seed_pages(count: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    pages = []
    for index in range(count):
        paragraphs = [" ".join(sentence(rng) for _ in range(2)) for _ in range(4)]
        lines = ["Home | News | Sport"]
        for paragraph in paragraphs:
            lines.append(f"{paragraph} {rng.choice(NOISE)}" if rng.random() < 0.5 else paragraph)
        lines.append("Copyright 2024 The Gazette")
        subset = "ab"[index % 2]  # two collections, for the leave-one-collection-out folds
        pages.append(chunk_example(f"{subset}/{index}", subset, f"site{index}.example", lines, "\n".join(paragraphs)))
    return pages


def test_line_words_read_each_word_with_its_shape():
    buckets, shapes = line_words("Read more » The council met.")
    assert len(buckets) == 5 and shapes.shape == (5, SHAPE_FEATURES)
    assert shapes[2, 4] == 1.0  # "The" comes after the mark "»"
    assert line_words("» | «") is None


def test_a_word_head_round_trips_and_skips_lines_without_words(tmp_path):
    head = WordHead()
    head.save(tmp_path)
    loaded = WordHead.load(tmp_path)
    probabilities = loaded.noise_probabilities(["The council met. Read more »", "* * *"])
    assert len(probabilities[0]) == 5 and probabilities[1] is None
    assert probabilities[0] == pytest.approx(head.eval().noise_probabilities(["The council met. Read more »"])[0])
    assert WordHead.load(tmp_path / "none") is None


def test_training_lines_are_labelled_by_the_alignment_with_the_gold():
    pages = [Example.from_seed(example) for example in seed_pages(20)]
    items = line_items(pages)
    noisy = [labels for _, _, labels in items if labels.any()]
    assert noisy and all(labels[-1] == 1.0 and labels[0] == 0.0 for labels in noisy)  # noise ends the line


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone):
    from models.test_tagger import write_tagger

    root = tmp_path_factory.mktemp("word-head")
    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32, chunk_budget=0)
    tagger = write_tagger(root / "tagger", config, line_bias=-10.0, doc_bias=-10.0)  # keeps every line
    write_seed(seed_pages(160), root / "seed.jsonl")
    output = root / "with-words"
    report = train_and_validate_word_head(load_seed(root / "seed.jsonl"), tagger, output, leave_collection_out=True)
    return root, output, report


def test_a_trained_word_head_removes_noise_inside_lines_and_no_content(trained):
    _, output, report = trained
    seed_calls = report["seed_calls"]
    assert seed_calls["calls"] > 0 and seed_calls["content_words_removed"] == 0
    held_out = report["held_out_sites"]
    assert held_out["content_word_precision"]["with"] > held_out["content_word_precision"]["without"] + 0.02
    assert held_out["content_words_removed"] == 0 and held_out["not_found"] == 0
    for collection in ("a", "b"):
        fold = report["leave_collection_out"][collection]["all"]
        assert fold["calls"] > 0 and fold["content_words_removed"] == 0
    config = TaggerConfig.load(output)
    assert config.word_threshold == report["threshold"] and "word_head" in config.metrics


def test_the_tagger_writes_normalize_calls_that_prox_evaluate_scores(trained):
    _, output, _ = trained
    pages = [Example.from_seed(example) for example in seed_pages(12, seed=99)]
    report = evaluate_chunk(resolve(str(output), Stage.CHUNK), pages)
    normalize = report["model"]["normalize"]
    assert normalize["calls"] > 0 and normalize["not_found"] == 0 and normalize["content_words_removed"] == 0
    assert normalize["noise_words_removed"] > 0
    assert normalize["content_word_precision"]["with"] > normalize["content_word_precision"]["without"]


def test_prox_train_word_head_writes_a_tagger(trained, tmp_path):
    root, _, _ = trained
    args = ["train", "word-head", "--seed", str(root / "seed.jsonl"), "--tagger", str(root / "tagger")]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out"), "--max-pages", "80"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pages"] == 80
    assert (tmp_path / "out" / "word_head.safetensors").is_file()
    assert orjson.loads((tmp_path / "out" / "tagger.json").read_bytes())["word_threshold"] is not None
