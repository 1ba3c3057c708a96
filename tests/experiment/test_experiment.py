"""`prox experiment` end to end on a small pool with the bundled refiners, and lm-eval on local tasks."""

import bz2
import json
from pathlib import Path

import pytest
from test_cli import flat
from test_cli import run as invoke

from proxkit.experiment.zero_shot import prepare_tasks, wikitext_pages

PROSE = [
    "The river rises in the northern hills and flows for two hundred kilometres to the sea.",
    "Farmers along its banks grow wheat, barley and vegetables for the markets of the valley.",
    "In spring the snow melts and the water level can rise by more than three metres in a week.",
    "The town built a new bridge in 1998 after the old stone bridge was damaged by a flood.",
    "Schools in the region teach children about the history of the river and its many mills.",
    "Visitors come in summer to walk the paths, watch the birds and swim in the quiet pools.",
]


def write_benchmarks(root: Path) -> Path:
    """A few items of each benchmark format of ../shared/data/eval_benchmarks."""
    gauntlet = root / "llm_foundry_gauntlet"
    (gauntlet / "commonsense_reasoning").mkdir(parents=True)
    (gauntlet / "language_understanding").mkdir(parents=True)
    copa = [{"query": "The river flooded, therefore", "choices": ["the bridge was damaged.", "it snowed."], "gold": 0}]
    (gauntlet / "commonsense_reasoning" / "copa.jsonl").write_text("\n".join(json.dumps(x) for x in copa * 3))
    wino = {
        "context_options": ["Anna helped Maria so Anna", "Anna helped Maria so Maria"],
        "continuation": "was kind.",
        "gold": 0,
    }
    (gauntlet / "language_understanding" / "winogrande.jsonl").write_text(json.dumps(wino) + "\n")
    lambada = {"context": "The farmers grow wheat and barley for the", "continuation": "markets"}
    (gauntlet / "language_understanding" / "lambada_openai.jsonl").write_text(json.dumps(lambada) + "\n")
    (root / "hellaswag").mkdir()
    item = "Rowing: A man sits in a boat. he\n1\nsings.\nrows the boat.\neats.\nsleeps.\n"
    with bz2.open(root / "hellaswag" / "hellaswag_val_full.txt.bz2", "wt") as file:
        file.write(item * 2)
    (root / "wikitext2_raw_test").mkdir()
    wiki = " \r\n = River = \r\n \r\n The river is long . \r\n \r\n = = Course = = \r\n It flows north . \r\n"
    wiki += " \r\n = Bridge = \r\n \r\n The bridge is old @-@ stone . \r\n"
    (root / "wikitext2_raw_test" / "wiki.test.raw").write_text(wiki)
    return root


def test_wikitext_pages_split_at_article_titles_only():
    pages = wikitext_pages(" = River = \n The river .\n = = Course = = \n Flows .\n = Bridge = \n Old .\n")
    assert [page.split("\n")[0] for page in pages] == [" = River = ", " = Bridge = "]


def test_prepare_tasks_writes_the_benchmarks_found_and_names_missing_ones(tmp_path):
    benchmarks = write_benchmarks(tmp_path / "bench")
    tasks = prepare_tasks(benchmarks, tmp_path / "tasks")
    assert tasks == ["prox_copa", "prox_winogrande", "prox_lambada_openai", "prox_hellaswag", "prox_wikitext"]
    hellaswag = [json.loads(line) for line in (tmp_path / "tasks" / "hellaswag.jsonl").read_text().splitlines()]
    assert hellaswag[0] == {
        "query": "Rowing: A man sits in a boat. he",
        "gold": 1,
        "choices": ["sings.", "rows the boat.", "eats.", "sleeps."],
    }
    with pytest.raises(FileNotFoundError, match="piqa"):
        prepare_tasks(benchmarks, tmp_path / "tasks", names=("piqa",))


def test_lm_eval_scores_a_model_that_knows_the_answer(tmp_path):
    """The LM adapter gives lm-eval real log-likelihoods: a model trained on the right answers wins."""
    import torch

    from proxkit.experiment.pretrain import EOS, ModelShape, TrainSettings, build_model, pack, pretrain, train_tokenizer
    from proxkit.experiment.zero_shot import evaluate

    benchmarks = write_benchmarks(tmp_path / "bench")
    tasks = prepare_tasks(benchmarks, tmp_path / "tasks", names=("copa",))
    text = "The river flooded, therefore the bridge was damaged."
    tokenizer = train_tokenizer([text, "it snowed.", *PROSE], 300, tmp_path / "tokenizer.json")
    eos = tokenizer.token_to_id(EOS)
    shape = ModelShape(hidden=64, layers=2, heads=2, intermediate=128, context=32)
    model = build_model(shape, tokenizer.get_vocab_size(), seed=0)
    blocks = pack([tokenizer.encode(text).ids], eos, shape.context, 32 * 64, seed=0)
    torch.manual_seed(0)
    pretrain(blocks, model, TrainSettings(tokens=32 * 64, batch=4, lr=3e-3), corpus_tokens=12, seed=0)
    scores = evaluate(
        model, tokenizer, context=shape.context, eos_id=eos, task_dir=tmp_path / "tasks", tasks=tasks, limit=None
    )
    assert scores["copa"]["acc"] == 1.0 and scores["copa"]["acc_norm"] == 1.0


def test_prox_experiment_end_to_end_and_resumes(tmp_path):
    pool = tmp_path / "pool.jsonl"
    menu = "Home | News | Sport | Contact\nLog in\nShare on Facebook"
    documents = [
        {"id": f"doc-{i}", "text": menu + "\n" + "\n".join(PROSE[i % 6 :] + PROSE[: i % 6]) + "\n(c) 2024 All rights"}
        for i in range(8)
    ] + [{"id": "spam", "text": "Buy cheap watches now\n" * 30}]
    pool.write_text("\n".join(json.dumps(d) for d in documents) + "\n")
    benchmarks = write_benchmarks(tmp_path / "bench")
    out = tmp_path / "out"
    args = ["experiment", str(pool), "-o", str(out), "--benchmarks", str(benchmarks), "--seeds", "2"]
    args += ["--tokens", "2048", "--model-size", "tiny", "--batch", "2", "--eval-limit", "2", "--wikitext-pages", "1"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    table = (out / "results.md").read_text()
    assert table in result.output
    for arm in ("raw", "rules", "prox"):
        assert f"| {arm} |" in table
    assert "| rules - raw |" in table and "| prox - raw |" in table
    assert (out / "results.png").stat().st_size > 10_000
    summary = json.loads((out / "results.json").read_text())
    arms = summary["arms"]
    assert {arm: arms[arm]["train"]["tokens"] for arm in arms} == {"raw": 2048, "rules": 2048, "prox": 2048}
    assert len({arms[arm]["train"]["steps"] for arm in arms}) == 1  # equal tokens, equal steps
    assert arms["raw"]["corpus"]["documents"] == 9 and arms["prox"]["corpus"]["documents"] < 9
    assert summary["flops"]["refining"] > 0 and summary["flops"]["training_per_model"] > 0
    assert set(arms["raw"]["by_seed"]) >= {"bits_per_byte", "acc:copa", "acc:hellaswag", "average_accuracy"}
    runs = sorted((out / "runs").glob("*/*.json"))
    assert len(runs) == 6
    written = {path: path.stat().st_mtime_ns for path in runs}
    again = invoke(*args)
    assert again.exit_code == 0 and {path: path.stat().st_mtime_ns for path in runs} == written  # nothing retrained
    assert (out / "results.md").read_text() == table


def test_prox_experiment_reads_the_keys_limit_refiners_and_learning_rate_it_is_given(tmp_path, tiny_refiner):
    from proxkit.run import read_records

    pool = tmp_path / "pool.jsonl"
    documents = [{"doc_id": f"d{i}", "content": "\n".join(PROSE[i % 6 :] + PROSE[: i % 6])} for i in range(9)]
    pool.write_text("\n".join(json.dumps(d) for d in documents) + "\n")
    out = tmp_path / "out"
    args = ["experiment", str(pool), "-o", str(out), "--benchmarks", str(write_benchmarks(tmp_path / "bench"))]
    args += ["--seeds", "1", "--tokens", "1024", "--model-size", "tiny", "--batch", "2", "--eval-limit", "1"]
    args += ["--wikitext-pages", "1", "--text-key", "content", "--id-key", "doc_id", "--limit", "6", "--device", "cpu"]
    args += ["--doc-model", str(tiny_refiner), "--chunk-model", str(tiny_refiner)]
    losses = {}
    for lr in ("0.01", "1e-7"):  # the same corpora, a run folder per learning rate
        result = invoke(*args, "--lr", lr)
        assert result.exit_code == 0, result.output + repr(result.exception)
        summary = json.loads((out / "results.json").read_text())
        assert summary["config"]["lr"] == float(lr) and summary["arms"]["raw"]["corpus"]["documents"] == 6
        [run] = set((out / "runs").glob("*/raw-seed0.json")) - set(losses.values())
        losses[lr] = run
    losses = {lr: json.loads(path.read_text())["train"]["final_loss"] for lr, path in losses.items()}
    assert losses["1e-7"] > losses["0.01"] + 0.5  # a rate that barely moves the weights learns nothing
    refined = json.loads((out / "corpora" / "prox" / "stats.json").read_text())["config"]
    assert refined["doc_model"] == refined["chunk_model"] == str(tiny_refiner)
    records = read_records(out / "corpora" / "prox" / "data") + read_records(out / "corpora" / "prox" / "dropped")
    assert sorted(record["id"] for record in records) == [f"d{i}" for i in range(6)]


def test_prox_experiment_names_a_missing_benchmark_folder(tmp_path):
    result = invoke(
        "experiment", str(tmp_path / "pool.jsonl"), "-o", str(tmp_path / "o"), "--benchmarks", str(tmp_path / "none")
    )
    assert result.exit_code != 0 and "benchmark folder" in flat(result.output)
