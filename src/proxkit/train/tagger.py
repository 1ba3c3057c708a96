"""Train the line tagger (see `proxkit.models.tagger`) from seed examples.

The backbone is frozen, so its line states are computed once per example and stored (one file each, so
an interrupted extraction resumes where it stopped); the heads then train in seconds on those states.
Validation holds out whole sites: a page's site never lies in both the training and the test side.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from loguru import logger

from proxkit.models.tagger import HEADS_FILE, Backbone, DocProbe, TaggerConfig, TaggerHeads
from proxkit.train.evaluate import doc_scores, rule_doc_scores
from proxkit.train.metrics import c4_line_rule, chunk_report, mean
from proxkit.train.seed import Example
from proxkit.train.split import held_out_split, site_folds

STATES_VERSION = 2  # bump when the way line states are computed changes


class StateStore:
    """Line states per example, computed with the frozen backbone once and kept on disk; handed out as
    what the heads read (`TaggerConfig.head_inputs`)."""

    def __init__(self, folder: str | Path, config: TaggerConfig) -> None:
        settings = json.dumps(
            [STATES_VERSION, config.base, config.depth, config.layers, config.max_line_tokens, config.max_tokens]
        )
        self.folder = Path(folder) / hashlib.sha1(settings.encode()).hexdigest()[:12]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = config
        self._backbone: Backbone | None = None

    def states(self, example: Example) -> torch.Tensor:
        text = "\n".join(example.lines)
        key = hashlib.sha1(f"{example.stage}\0{example.source}\0{text}".encode(errors="surrogatepass")).hexdigest()
        path = self.folder / f"{key}.pt"
        if path.exists():
            return self.config.head_inputs(torch.load(path), example.lines)
        if self._backbone is None:
            self._backbone = Backbone(self.config)
        # the doc head reads one forward pass's worth, as at run time
        states = self._backbone.line_states(example.lines, first_window_only=example.stage == "doc")
        torch.save(states, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        return self.config.head_inputs(states, example.lines)

    def all(self, examples: Sequence[Example]) -> list[torch.Tensor]:
        from tqdm import tqdm

        return [self.states(example) for example in tqdm(examples, desc="line states", unit="page")]


def line_weights(lines: Sequence[str]) -> torch.Tensor:
    """Each line's weight in the line loss, 1 + log(1 + words): a long content line lost costs more than
    a short menu line, as it does in content-word F1."""
    return torch.tensor([1.0 + math.log1p(len(line.split())) for line in lines])


def train_heads(
    examples: Sequence[Example], states: Sequence[torch.Tensor], config: TaggerConfig, epochs: int = 30, seed: int = 0
) -> TaggerHeads:
    """Heads for these examples: the line head trained on the chunk examples (binary cross-entropy weighted
    by `line_weights`, AdamW, one page per step), then the doc probe fitted on the doc examples."""
    torch.manual_seed(seed)
    heads = TaggerHeads.for_config(config)
    pages = [(example, state) for example, state in zip(examples, states, strict=True) if example.remove]
    optimizer = torch.optim.AdamW(heads.parameters(), lr=1e-3, weight_decay=1e-2)
    weights = [line_weights(example.lines[: len(example.remove)]) for example, _ in pages]
    order = list(range(len(pages)))
    rng = random.Random(seed)
    heads.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            example, state = pages[index]
            target = torch.tensor(example.remove, dtype=torch.float32)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                heads.line_logits(state), target, weight=weights[index] / weights[index].mean()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    heads.eval()
    docs = [(state, example.drop) for example, state in zip(examples, states, strict=True) if example.drop is not None]
    if docs:
        pooled = pool_documents(heads, [state for state, _ in docs])
        drops = [drop for _, drop in docs]
        fit_doc_probe(heads.doc, pooled, drops, choose_penalty(pooled, drops, seed=seed))
    return heads


@torch.no_grad()
def pool_documents(heads: TaggerHeads, states: Sequence[torch.Tensor]) -> torch.Tensor:
    """[documents, features]: what the doc probe reads of each document."""
    return torch.stack([heads.pooled(state) for state in states])


@torch.inference_mode()
def line_probabilities(heads: TaggerHeads, states: Sequence[torch.Tensor]) -> list[list[float]]:
    """P(remove) of every line of each example."""
    return [torch.sigmoid(heads.line_logits(state)).tolist() for state in states]


@torch.inference_mode()
def drop_probabilities(heads: TaggerHeads, states: Sequence[torch.Tensor]) -> list[float]:
    """P(drop) of each document."""
    return torch.sigmoid(heads.doc(pool_documents(heads, states))).reshape(-1).tolist()


PENALTIES = (0.3, 1.0, 3.0, 10.0, 30.0)  # L2 strengths tried for the doc probe (mean loss + penalty/2·|w|²)


def fit_doc_probe(probe: DocProbe, pooled: torch.Tensor, drops: Sequence[bool], penalty: float) -> DocProbe:
    """Fit the probe in place: standardize the pooled states, then L2-regularized logistic regression
    (full batch, L-BFGS)."""
    with torch.no_grad():
        probe.center.copy_(pooled.mean(dim=0))
        probe.scale.copy_(pooled.std(dim=0, unbiased=False).clamp_min(1e-6))
        probe.linear.weight.zero_()
        probe.linear.bias.zero_()
    target = torch.tensor(drops, dtype=torch.float32)
    optimizer = torch.optim.LBFGS(probe.linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe(pooled), target)
        loss = loss + penalty / 2 * probe.linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


def choose_penalty(pooled: torch.Tensor, drops: Sequence[bool], folds: int = 5, seed: int = 0) -> float:
    """The L2 strength with the best cross-validated accuracy on these documents (ties: the stronger)."""
    if len(drops) < 2 * folds:
        return PENALTIES[-1]
    scores = {}
    for penalty in PENALTIES:
        probabilities = held_out_drop_probabilities(pooled, drops, lambda *_, p=penalty: p, folds, seed)
        scores[penalty] = sum((p >= 0.5) == drop for p, drop in zip(probabilities, drops, strict=True))
    return max(reversed(PENALTIES), key=scores.__getitem__)


def held_out_drop_probabilities(
    pooled: torch.Tensor,
    drops: Sequence[bool],
    penalty: Callable[[torch.Tensor, list[bool]], float],
    folds: int,
    seed: int,
) -> list[float]:
    """P(drop) of each document from a probe fitted without it: k-fold over a shuffled order, the probe of
    each fold fitted on the other folds with the L2 strength `penalty(train_pooled, train_drops)`."""
    order = list(range(len(drops)))
    random.Random(seed).shuffle(order)
    probabilities = [0.0] * len(drops)
    for fold in range(folds):
        test = order[fold::folds]
        held_out = set(test)
        train = [i for i in order if i not in held_out]
        train_pooled, train_drops = pooled[train], [drops[i] for i in train]
        probe = fit_doc_probe(DocProbe(pooled.shape[1]), train_pooled, train_drops, penalty(train_pooled, train_drops))
        with torch.no_grad():
            fold_probabilities = torch.sigmoid(probe(pooled[test])).reshape(-1).tolist()
        for index, probability in zip(test, fold_probabilities, strict=True):
            probabilities[index] = probability
    return probabilities


def best_threshold(examples: Sequence[Example], probabilities: Sequence[Sequence[float]]) -> float:
    """The line threshold with the best mean content-word F1 on these (validation) pages."""
    candidates = [round(0.15 + 0.05 * step, 2) for step in range(16)]  # 0.15 .. 0.90

    def score(threshold: float) -> float:
        removes = [[p >= threshold for p in probs] for probs in probabilities]
        return chunk_report(examples, removes)["content_word_f1"]

    return max(candidates, key=score)


def cross_validate_chunks(
    examples: Sequence[Example], states: Sequence[torch.Tensor], config: TaggerConfig, folds: int = 5, epochs: int = 30
) -> dict:
    """Per fold: train on the other sites (minus a validation fold used for the threshold), test on this
    fold's sites; the C4 line rule is scored on the same test pages."""
    assignment = site_folds(examples, folds)
    results = []
    for test_fold in range(folds):
        validation_fold = (test_fold + 1) % folds
        split = {"train": [], "validation": [], "test": []}
        for index, fold in enumerate(assignment):
            part = "test" if fold == test_fold else "validation" if fold == validation_fold else "train"
            split[part].append(index)
        heads = train_heads([examples[i] for i in split["train"]], [states[i] for i in split["train"]], config, epochs)
        validation = [examples[i] for i in split["validation"]]
        threshold = best_threshold(validation, line_probabilities(heads, [states[i] for i in split["validation"]]))
        test = [examples[i] for i in split["test"]]
        probabilities = line_probabilities(heads, [states[i] for i in split["test"]])
        model = chunk_report(test, [[p >= threshold for p in probs] for probs in probabilities])
        rule = chunk_report(test, [[not keep for keep in c4_line_rule(e.lines)] for e in test])
        results.append({"fold": test_fold, "threshold": threshold, "tagger": model, "c4_line_rule": rule})
        logger.info(f"fold {test_fold}: tagger {model} | C4 rule {rule}")
    return {"folds": results, "mean": _mean_scores(results)}


def page_doc_states(
    config: TaggerConfig, docs: Sequence[Example], pages: Sequence[Example], page_states: Sequence[torch.Tensor]
) -> tuple[list[Example], list[torch.Tensor]]:
    """Doc-stage examples of pages whose line states are known, with the states of their first forward pass
    (what the doc head reads) cut from the page's: no backbone run needed."""
    from proxkit.models.tagger import Segmenter

    segmenter = Segmenter(config)
    by_source = {page.source: index for index, page in enumerate(pages)}
    chosen, states = [], []
    for doc in docs:
        index = by_source.get(doc.source)
        if index is not None and doc.lines == pages[index].lines:
            end = segmenter.windows(segmenter.pieces(doc.lines))[0][1]
            chosen.append(doc)
            # the backbone's columns of the page's states, with surface features of these lines alone
            states.append(config.head_inputs(page_states[index][:end, : config.features], doc.lines))
    return chosen, states


def cross_validate_docs(
    examples: Sequence[Example],
    states: Sequence[torch.Tensor],
    heads: TaggerHeads,
    threshold: float = 0.5,
    folds: int = 5,
    repeats: int = 5,
) -> dict:
    """Doc-level accuracy and keep-F1 of the doc probe, cross-validated over `examples` and repeated over
    `repeats` shufflings (mean and sd over repeats). The penalty is chosen inside each training side;
    `heads`' line head, which pools the documents, must not have been trained on them."""
    pooled = pool_documents(heads, states)
    drops = [bool(example.drop) for example in examples]
    runs = []
    for repeat in range(repeats):
        probabilities = held_out_drop_probabilities(pooled, drops, choose_penalty, folds, seed=repeat)
        runs.append(doc_scores([p >= threshold for p in probabilities], examples))
    summary = {"gopher_c4_fineweb_rules": rule_doc_scores(examples)}
    for metric in ("accuracy", "keep_f1"):
        summary[metric] = _spread([run[metric] for run in runs])
    return {**summary, "documents": len(examples), "folds": folds, "repeats": repeats}


def _mean_scores(results: list[dict]) -> dict:
    summary = {}
    for system in ("tagger", "c4_line_rule"):
        for metric in ("removed_line_f1", "kept_line_f1", "content_word_f1"):
            values = [result[system][metric] for result in results]
            summary[f"{system}.{metric}"] = _spread(values)
    gains = [result["tagger"]["content_word_f1"] - result["c4_line_rule"]["content_word_f1"] for result in results]
    summary["content_word_f1_gain_over_c4"] = _spread(gains)
    return summary


def _spread(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation, rounded to 4 places."""
    average = mean(values)
    sd = (sum((v - average) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
    return {"mean": round(average, 4), "sd": round(sd, 4)}


def train_tagger(
    examples: Sequence[Example], states: Sequence[torch.Tensor], config: TaggerConfig, epochs: int = 30
) -> TaggerHeads:
    """The shipped tagger's heads: trained on all but the held-out sites of the chunk pages
    (`held_out_split`), which set `config.line_threshold`; the doc probe is fitted on all doc examples."""
    _, validation_pages = held_out_split([e for e in examples if e.stage == "chunk"])
    held_out = {id(example) for example in validation_pages}
    validation = [i for i, e in enumerate(examples) if id(e) in held_out]
    train = [i for i, e in enumerate(examples) if id(e) not in held_out]
    heads = train_heads([examples[i] for i in train], [states[i] for i in train], config, epochs)
    config.line_threshold = best_threshold(
        [examples[i] for i in validation], line_probabilities(heads, [states[i] for i in validation])
    )
    return heads


def save_tagger(heads: TaggerHeads, config: TaggerConfig, output: Path) -> None:
    """A tagger directory `TaggerWriter` loads: the heads' weights and the config."""
    from safetensors.torch import save_file

    output.mkdir(parents=True, exist_ok=True)
    save_file(heads.state_dict(), str(output / HEADS_FILE))
    config.save(output)
