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
from collections.abc import Sequence
from pathlib import Path

import torch
from loguru import logger

from proxkit.models.tagger import HEADS_FILE, Backbone, TaggerConfig, TaggerHeads
from proxkit.train.metrics import accuracy, binary_f1, c4_line_rule, chunk_report, mean
from proxkit.train.seed import Example

STATES_VERSION = 2  # bump when the way line states are computed changes


class StateStore:
    """Line states per example, computed with the frozen backbone once and kept on disk."""

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
            return torch.load(path)
        if self._backbone is None:
            self._backbone = Backbone(self.config)
        # the doc head reads one forward pass's worth, as at run time
        states = self._backbone.line_states(example.lines, first_window_only=example.stage == "doc")
        torch.save(states, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        return states

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
    """Train line and doc heads jointly (binary cross-entropy, AdamW), one example per step; line losses
    are weighted by `line_weights`, and the validation threshold sets the balance of the two classes."""
    torch.manual_seed(seed)
    heads = TaggerHeads(config.features, config.width)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=1e-3, weight_decay=1e-2)
    weights = [line_weights(e.lines[: len(e.remove)]) if e.remove else None for e in examples]
    order = list(range(len(examples)))
    rng = random.Random(seed)
    heads.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            example = examples[index]
            line_logits, doc_logit = heads(states[index])
            loss = torch.zeros(())
            if example.remove:
                target = torch.tensor(example.remove, dtype=torch.float32)
                loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                    line_logits, target, weight=weights[index] / weights[index].mean()
                )
            if example.drop is not None:
                loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                    doc_logit, torch.tensor(float(example.drop))
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return heads.eval()


@torch.inference_mode()
def predict(heads: TaggerHeads, states: Sequence[torch.Tensor]) -> list[tuple[list[float], float]]:
    results = []
    for state in states:
        line_logits, doc_logit = heads(state)
        results.append((torch.sigmoid(line_logits).tolist(), float(torch.sigmoid(doc_logit))))
    return results


def best_threshold(examples: Sequence[Example], probabilities: Sequence[Sequence[float]]) -> float:
    """The line threshold with the best mean content-word F1 on these (validation) pages."""
    candidates = [round(0.15 + 0.05 * step, 2) for step in range(16)]  # 0.15 .. 0.90

    def score(threshold: float) -> float:
        removes = [[p >= threshold for p in probs] for probs in probabilities]
        return chunk_report(examples, removes)["content_word_f1"]

    return max(candidates, key=score)


def sample_pages(examples: Sequence[Example], limit: int, seed: int = 0) -> list[Example]:
    """At most `limit` examples (0: all), drawn at random but fairly across subsets (`source` prefixes)."""
    if not limit or len(examples) <= limit:
        return list(examples)
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(example.source.split("/")[0], []).append(example)
    rng = random.Random(seed)
    for group in groups.values():
        rng.shuffle(group)
    chosen: list[Example] = []
    while len(chosen) < limit:  # round robin over subsets, so small subsets are kept whole
        for group in groups.values():
            if group and len(chosen) < limit:
                chosen.append(group.pop())
    return chosen


def site_folds(examples: Sequence[Example], folds: int, seed: int = 0) -> list[int]:
    """A fold number per example such that all pages of one site share a fold."""
    sites = sorted({example.site for example in examples})
    random.Random(seed).shuffle(sites)
    fold_of_site = {site: index % folds for index, site in enumerate(sites)}
    return [fold_of_site[example.site] for example in examples]


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
        threshold = best_threshold(validation, [p for p, _ in predict(heads, [states[i] for i in split["validation"]])])
        test = [examples[i] for i in split["test"]]
        probabilities = [p for p, _ in predict(heads, [states[i] for i in split["test"]])]
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
            states.append(page_states[index][:end])
    return chosen, states


def cross_validate_docs(
    examples: Sequence[Example],
    states: Sequence[torch.Tensor],
    config: TaggerConfig,
    folds: int = 5,
    epochs: int = 30,
    always_train: tuple[Sequence[Example], Sequence[torch.Tensor]] = ((), ()),
) -> dict:
    """Doc-level accuracy and keep-F1 of the doc head, cross-validated over `examples`; the examples of
    `always_train` join every training side and are never tested."""
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    predicted: dict[int, bool] = {}
    for fold in range(folds):
        test = order[fold::folds]
        held_out = set(test)
        train = [i for i in order if i not in held_out]
        heads = train_heads(
            [examples[i] for i in train] + list(always_train[0]),
            [states[i] for i in train] + list(always_train[1]),
            config,
            epochs,
        )
        for index, (_, drop) in zip(test, predict(heads, [states[i] for i in test]), strict=True):
            predicted[index] = drop >= config.doc_threshold
    keeps = [not predicted[i] for i in range(len(examples))]
    actual = [not example.drop for example in examples]
    return {"accuracy": accuracy(keeps, actual), "keep_f1": binary_f1(keeps, actual).f1, "documents": len(examples)}


def _mean_scores(results: list[dict]) -> dict:
    summary = {}
    for system in ("tagger", "c4_line_rule"):
        for metric in ("removed_line_f1", "kept_line_f1", "content_word_f1"):
            values = [result[system][metric] for result in results]
            average = mean(values)
            spread = (sum((v - average) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
            summary[f"{system}.{metric}"] = {"mean": round(average, 4), "sd": round(spread, 4)}
    return summary


def train_tagger(
    examples: Sequence[Example], states: Sequence[torch.Tensor], config: TaggerConfig, output: Path, epochs: int = 30
) -> TaggerConfig:
    """The shipped tagger: heads trained on all sites but one validation fold, which sets the threshold."""
    from safetensors.torch import save_file

    chunk = [i for i, e in enumerate(examples) if e.stage == "chunk"]
    validation_sites = site_folds([examples[i] for i in chunk], 5)
    validation = [i for i, fold in zip(chunk, validation_sites, strict=True) if fold == 0]
    held_out = set(validation)
    train = [i for i in range(len(examples)) if i not in held_out]
    heads = train_heads([examples[i] for i in train], [states[i] for i in train], config, epochs)
    config.line_threshold = best_threshold(
        [examples[i] for i in validation], [p for p, _ in predict(heads, [states[i] for i in validation])]
    )
    output.mkdir(parents=True, exist_ok=True)
    save_file(heads.state_dict(), str(output / HEADS_FILE))
    config.save(output)
    return config
