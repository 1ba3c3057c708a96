"""`prox experiment`: does refined data train better models? From one pool of raw documents build three
corpora — raw, rule-filtered (datatrove's Gopher+C4+FineWeb) and ProX-refined — pre-train the same small
decoder from scratch on each at an equal token budget (packed blocks: equal steps too) with several seeds,
evaluate each model with lm-eval (WikiText-2 perplexity, zero-shot acc/acc_norm), and tabulate means with
95% confidence intervals over seeds.

Every step writes its result under OUT and is skipped when it is there, so an interrupted experiment
resumes: OUT/corpora/{rules,prox} (the outputs of prox baseline / prox refine), OUT/tokenizer.json,
OUT/runs/{settings}/{arm}-seed{n}.json, then OUT/results.json, OUT/results.md and OUT/results.png.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from loguru import logger

from proxkit.experiment.config import ARMS, ExperimentConfig
from proxkit.experiment.pretrain import EOS


def build_corpora(config: ExperimentConfig) -> dict[str, list[str]]:
    """The three corpora from the pool: rules and prox via `prox baseline all` and `prox refine` (resumable
    runs under OUT/corpora); raw is every document the rules run read (failed records are in no arm)."""
    from proxkit.baselines import BaselineConfig, run_baseline
    from proxkit.run import RefineConfig, read_records, refine

    root = Path(config.output) / "corpora"
    common = {"inputs": config.pool, "text_key": config.text_key, "id_key": config.id_key, "limit": config.limit}
    if not (root / "rules" / "stats.json").is_file():
        run_baseline(BaselineConfig(output=str(root / "rules"), progress=False, **common))
    if not (root / "prox" / "stats.json").is_file():
        refine(RefineConfig(output=str(root / "prox"), progress=False, **common, **config.refine))
    rules = read_records(root / "rules" / "data")
    raw = [record["raw_content"] for record in rules + read_records(root / "rules" / "dropped")]
    return {
        "raw": raw,
        "rules": [record["text"] for record in rules],
        "prox": [record["text"] for record in read_records(root / "prox" / "data")],
    }


def run_experiment(config: ExperimentConfig) -> dict:
    """Build the corpora, train and evaluate every arm and seed (skipping finished runs), write the tables."""
    from proxkit.experiment.pretrain import load_tokenizer, train_tokenizer
    from proxkit.experiment.tables import summarize, write_outputs
    from proxkit.experiment.zero_shot import PERPLEXITY_TASK, prepare_tasks

    output = Path(config.output)
    corpora = build_corpora(config)
    tokenizer_path = output / "tokenizer.json"
    tokenizer = (
        load_tokenizer(tokenizer_path)
        if tokenizer_path.is_file()
        else train_tokenizer(corpora["raw"], config.vocab_size, tokenizer_path)  # one tokenizer for every arm
    )
    encoded = {arm: [tokenizer.encode(text).ids for text in texts] for arm, texts in corpora.items()}
    tasks = prepare_tasks(Path(config.benchmarks), output / "tasks")
    accuracy_tasks = [task for task in tasks if task != f"prox_{PERPLEXITY_TASK}"]
    runs, folder = [], output / "runs" / config.fingerprint()
    for arm in ARMS:
        for seed in range(config.seeds):
            path = folder / f"{arm}-seed{seed}.json"
            if not path.is_file():
                result = _train_and_evaluate(config, arm, seed, encoded[arm], tokenizer, accuracy_tasks)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2))
            runs.append(json.loads(path.read_text()))
    corpus_stats = {
        arm: {"documents": len(texts), "tokens": sum(len(ids) for ids in encoded[arm])}
        for arm, texts in corpora.items()
    }
    refine_stats = json.loads((output / "corpora" / "prox" / "stats.json").read_text())
    summary = summarize(runs, corpus_stats, refine_stats)
    summary["config"] = {k: v for k, v in asdict(config).items() if k != "refine"} | {"shape": asdict(config.shape)}
    write_outputs(summary, output)
    return summary


def _train_and_evaluate(config, arm, seed, token_lists, tokenizer, accuracy_tasks) -> dict:
    from proxkit.experiment.pretrain import build_model, pack, pretrain
    from proxkit.experiment.zero_shot import PERPLEXITY_TASK, evaluate

    eos = tokenizer.token_to_id(EOS)
    blocks = pack(token_lists, eos, config.shape.context, config.tokens, seed)
    model = build_model(config.shape, tokenizer.get_vocab_size(), seed)
    corpus_tokens = sum(len(ids) + 1 for ids in token_lists)
    trained = pretrain(blocks, model, config.settings, corpus_tokens, seed)
    logger.info(f"{arm} seed {seed}: {trained.steps} steps, loss {trained.final_loss}, {trained.seconds}s")
    task_dir = Path(config.output) / "tasks"
    options = {"context": config.shape.context, "eos_id": eos, "task_dir": task_dir}
    scores = evaluate(model, tokenizer, tasks=accuracy_tasks, limit=config.eval_limit or None, **options)
    scores |= evaluate(
        model, tokenizer, tasks=[f"prox_{PERPLEXITY_TASK}"], limit=config.wikitext_pages or None, **options
    )
    return {"arm": arm, "seed": seed, "train": trained.to_dict(), "scores": scores}
