"""The experiment's statistics and tables."""

import math

import pytest

from proxkit.experiment.tables import markdown, mean_interval, run_metrics, summarize


def test_mean_interval_is_students_t_over_seeds():
    mean, half = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(mean_interval([5.0])[1])


def _run(arm, seed, bpb, accuracy):
    scores = {
        "wikitext": {"bits_per_byte": bpb, "word_perplexity": 2**bpb * 100, "byte_perplexity": 2**bpb},
        "copa": {"acc": accuracy - 0.1, "acc_norm": accuracy},
        "winogrande": {"acc": accuracy},
    }
    train = {"steps": 10, "tokens": 20_480, "parameters": 1_000, "flops": 6 * 1_000 * 20_480, "epochs": 1.5}
    return {"arm": arm, "seed": seed, "train": train | {"final_loss": 5.0}, "scores": scores}


def test_run_metrics_prefer_acc_norm_and_average_the_tasks():
    metrics = run_metrics(_run("raw", 0, 2.0, 0.6))
    assert metrics["acc:copa"] == 0.6 and metrics["acc:winogrande"] == 0.6
    assert metrics["average_accuracy"] == 0.6 and metrics["bits_per_byte"] == 2.0


def test_summary_pairs_seeds_against_raw_and_the_table_shows_it():
    runs = [_run("raw", s, 2.0 + 0.1 * s, 0.5) for s in range(3)]
    runs += [_run("prox", s, 1.8 + 0.1 * s, 0.55) for s in range(3)]
    corpora = {"raw": {"documents": 10, "tokens": 1000}, "prox": {"documents": 6, "tokens": 400}}
    summary = summarize(runs, corpora, {"flops": {"refining": 1.5e12}})
    difference, half = summary["arms"]["prox"]["vs_raw"]["bits_per_byte"]
    assert difference == pytest.approx(-0.2) and half == pytest.approx(0.0, abs=1e-9)  # the same gap every seed
    assert summary["arms"]["prox"]["corpus"]["token_share"] == 0.4
    assert summary["flops"] == {"refining": 1.5e12, "training_per_model": 6 * 1_000 * 20_480}
    table = markdown(summary)
    assert "| prox | 6 | 400 (40%) | 20,480 | 10 | 1.50 |" in table
    assert "| prox - raw | -0.200 ± 0.000 |" in table
    assert "1.5e+12" in table
