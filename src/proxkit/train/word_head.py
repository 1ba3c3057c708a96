"""Train a tagger's word head (`proxkit.models.word_head`) from seed pages with a gold (`prox train word-head`).

Labels come from the seed: in a line the gold keeps, the words its `normalize` calls delete are noise, the
words the gold holds (`annotate.human.aligned_words`) are content, and the other words, which no safe call
deletes, are left out (`line_items`). Only what passes the safety rules of `inline_noise.normalize_calls` is
ever written, so the threshold is chosen on held-out sites by what the calls do: the best content-word
precision at a recall loss of at most `MAX_RECALL_LOSS` and content words removed at most
`MAX_CONTENT_REMOVED` of the gold's.
Validation holds out whole sites, and with `--leave-collection-out` whole collections. Lines are the gold's
line labels here, so the scores say what the word head adds to a line head that is right; `prox evaluate
chunk` says what the whole tagger does.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from loguru import logger

from proxkit.annotate.human import aligned_words
from proxkit.inline_noise import normalize_calls, word_spans
from proxkit.models.tagger import TaggerConfig
from proxkit.models.word_head import WordHead, batch, line_words
from proxkit.program import Normalize
from proxkit.train.metrics import inline_report
from proxkit.train.seed import Example
from proxkit.train.split import held_out_split, sample_pages

MAX_RECALL_LOSS = 0.002  # content-word recall a threshold may cost (mean per page)
MAX_CONTENT_REMOVED = 0.0005  # share of the gold's words a threshold's calls may remove
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
MIN_STEPS = 200  # optimizer steps however few the lines, so a small seed set is still learned
CLEAN_LINES_PER_NOISY = 3  # lines without noise kept per line with noise in training (the rest sampled out)

LineItem = tuple[list[int], torch.Tensor, torch.Tensor]  # buckets, shapes, noise labels of one line


def pages_with_gold(examples: Sequence[Example]) -> list[Example]:
    """The chunk pages a word head learns from or is scored on: those with a gold main content."""
    return [example for example in examples if example.stage == "chunk" and example.gold and example.remove]


def line_items(pages: Sequence[Example], seed: int = 0) -> list[LineItem]:
    """The training lines of these pages, each word labelled 1 (noise the seed's `normalize` calls delete),
    0 (a word the gold holds) or -1 (left out of the loss: a word the gold does not hold that no safe call
    deletes, which is as often an alignment's doubt as noise): every content line with a noise word, and up
    to `CLEAN_LINES_PER_NOISY` times as many without, drawn at random."""
    noisy, clean = [], []
    for page in pages:
        for line, gone, aligned in zip(page.lines, page.remove, aligned_words(page.lines, page.gold), strict=True):
            read = None if gone else line_words(line)
            spans = word_spans(line)
            if read is None or spans is None or len(spans) != len(aligned):
                continue
            deleted = _deleted_words(line, spans, page.normalize)
            labels = [1.0 if cut else 0.0 if kept else -1.0 for cut, kept in zip(deleted, aligned, strict=True)]
            (noisy if any(deleted) else clean).append((read[0], read[1], torch.tensor(labels)))
    rng = random.Random(seed)
    rng.shuffle(clean)
    return noisy + clean[: CLEAN_LINES_PER_NOISY * len(noisy)]


def _deleted_words(line: str, spans: Sequence[tuple[int, int]], sources: Sequence[str]) -> list[bool]:
    """Which words of the line lie inside an occurrence of one of `sources`."""
    cut = [False] * len(spans)
    for source in sources:
        start = line.find(source)
        while start >= 0:
            end = start + len(source)
            cut = [flag or (start <= s and e <= end) for flag, (s, e) in zip(cut, spans, strict=True)]
            start = line.find(source, end)
    return cut


def train_word_head(items: Sequence[LineItem], epochs: int = 4, batch_size: int = 64, seed: int = 0) -> WordHead:
    """A word head fitted to these lines: binary cross-entropy over their words, AdamW, `epochs` passes (at
    least `MIN_STEPS` batches)."""
    torch.manual_seed(seed)
    head = WordHead()
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-4)
    order = list(range(len(items)))
    rng = random.Random(seed)
    head.train()
    passes = max(epochs, -(-MIN_STEPS * batch_size // max(len(items), 1)))
    for _ in range(passes if items else 0):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            chosen = [items[i] for i in order[start : start + batch_size]]
            buckets, shapes, lengths = batch([(ids, shape) for ids, shape, _ in chosen])
            target = torch.full(buckets.shape, -1.0)
            for row, (_, _, labels) in enumerate(chosen):
                target[row, : len(labels)] = labels
            mask = target >= 0
            logits = head(buckets, shapes, lengths)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], target[mask])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head.eval()


def page_calls(head: WordHead, pages: Sequence[Example], threshold: float, probabilities=None) -> list[list]:
    """The `normalize` calls the head writes for each page (gold line labels), through the safety rules."""
    calls = []
    for index, page in enumerate(pages):
        kept = [line for line, gone in zip(page.lines, page.remove, strict=True) if not gone]
        marks = probabilities[index] if probabilities is not None else head.noise_probabilities(kept)
        flags = iter([None if p is None else [x >= threshold for x in p] for p in marks])
        noise = [None if gone else next(flags) for gone in page.remove]
        calls.append(normalize_calls(page.lines, page.remove, noise))
    return calls


def scored(head: WordHead, pages: Sequence[Example], threshold: float, probabilities=None) -> dict:
    """`inline_report` of the head's calls on these pages, with the gold's own line labels."""
    return inline_report(pages, [page.remove for page in pages], page_calls(head, pages, threshold, probabilities))


def choose_threshold(head: WordHead, pages: Sequence[Example]) -> tuple[float, dict]:
    """The threshold of `THRESHOLDS` with the best content-word precision at a recall loss of at most
    `MAX_RECALL_LOSS` and content removed at most `MAX_CONTENT_REMOVED` on these pages (the highest when
    none is that safe), and its report."""
    probabilities = [
        head.noise_probabilities([line for line, gone in zip(p.lines, p.remove, strict=True) if not gone])
        for p in pages
    ]
    best = None
    for threshold in THRESHOLDS:
        report = scored(head, pages, threshold, probabilities)
        recall, precision = report["content_word_recall"], report["content_word_precision"]
        gain = precision["with"] - precision["without"]
        safe = report["content_words_removed_share"] <= MAX_CONTENT_REMOVED
        if safe and recall["without"] - recall["with"] <= MAX_RECALL_LOSS and (best is None or gain > best[0]):
            best = (gain, threshold, report)
    if best is None:
        return THRESHOLDS[-1], scored(head, pages, THRESHOLDS[-1], probabilities)
    return best[1], best[2]


def fold_report(train: Sequence[Example], validation: Sequence[Example], test: Sequence[Example]) -> dict | None:
    """Train on `train`, choose the threshold on `validation`, score `test` (per rendering too); None when
    `train` or `validation` has no page."""
    if not train or not validation:
        return None
    head = train_word_head(line_items(train))
    threshold, _ = choose_threshold(head, validation)
    report = {"threshold": threshold, "pages": len(test), "all": scored(head, test, threshold)}
    for rendering in sorted({page.rendering or "-" for page in test}):
        chosen = [page for page in test if (page.rendering or "-") == rendering]
        report[f"rendering={rendering}"] = scored(head, chosen, threshold)
    return report


def train_and_validate_word_head(
    examples: Sequence[Example], tagger: Path, output: Path, max_pages: int = 0, leave_collection_out: bool = False
) -> dict:
    """`prox train word-head`: the tagger directory copied to `output` with a word head trained on the
    training sites (threshold from the held-out sites) and its `word_threshold` set; with
    `leave_collection_out`, one fold per collection first (train on the others' training sites, threshold on
    their held-out sites, test on the collection). The report, with what the seed's own calls do on the same
    pages (`seed_calls`, the ceiling), is saved in `tagger.json` (`metrics.word_head`)."""
    pages = sample_pages(pages_with_gold(examples), max_pages)
    train, held_out = held_out_split(pages)
    seed_calls = [[Normalize(source) for source in page.normalize] for page in pages]
    # the ceiling: what the seed's own calls do on the gold's line labels
    report: dict = {"pages": len(pages), "seed_calls": inline_report(pages, [p.remove for p in pages], seed_calls)}
    if leave_collection_out:
        folds = {}
        for collection in sorted({page.collection for page in pages}):
            test = [page for page in pages if page.collection == collection]
            fold = fold_report(
                [p for p in train if p.collection != collection],
                [p for p in held_out if p.collection != collection],
                test,
            )
            if fold is None:
                logger.warning(f"no other collection to train on without {collection}: fold left out")
                continue
            folds[collection] = fold
            logger.info(f"word head without {collection}: {fold['all']}")
        report["leave_collection_out"] = folds
    head = train_word_head(line_items(train))
    threshold, validation = choose_threshold(head, held_out)
    report |= {"threshold": threshold, "held_out_sites": validation}
    if output.resolve() != tagger.resolve():
        shutil.copytree(tagger, output, dirs_exist_ok=True)
    config = TaggerConfig.load(output)
    config.word_threshold = threshold
    config.metrics = {**config.metrics, "word_head": report}
    head.save(output)
    config.save(output)
    return report
