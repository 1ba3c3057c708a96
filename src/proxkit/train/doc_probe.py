"""Refit a tagger's doc probe on documents, its line head and backbone unchanged (`prox train doc-probe`).

The probe learns from two kinds of labels: DCLM's human quality labels (keep / drop as rated) and WCXB's
pages, full page (in each rendering) and gold text alike, labelled by page type — articles, documentation,
forum threads and the rest keep when their gold holds a document; listing, collection and product pages
drop (link lists and shop pages, what quality raters drop); service pages, whose worth varies, are left
out. Each collection weighs the same in the loss, so 218 DCLM documents are not drowned by thousands of
WCXB ones. Validation: DCLM cross-validated (the other collections always in training) and WCXB by site
fold, with the share kept of the article, documentation and forum pages holding at least 300 gold words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from proxkit.models.tagger import FEATURES_VERSION, DocProbe, TaggerConfig, TaggerHeads
from proxkit.train.evaluate import doc_scores, full_page_documents
from proxkit.train.seed import Example
from proxkit.train.split import site_folds
from proxkit.train.tagger import (
    StateStore,
    as_read_at_run_time,
    cross_validated_probabilities,
    fit_doc_probe,
    fitted_languages,
    pool_documents,
    save_tagger,
)

PAGE_TYPE_DROPS = frozenset({"listing", "collection", "product"})
PAGE_TYPES_LEFT_OUT = frozenset({"service"})
READER_TYPES = ("article", "documentation", "forum")  # pages a reader keeps: the target of the WCXB check
MIN_GOLD_WORDS = 300
PENALTY = 1.0


def probe_examples(examples: Sequence[Example], renderings: bool = True) -> list[Example]:
    """The doc examples the probe learns from, labelled as above (DCLM and page-typed collections); with
    `renderings`, also each page-typed page's full text in its other renderings (`full_page_documents` of its
    chunk examples), so that no extractor's way of breaking lines is what the probe learns."""
    documents = [example for example in examples if example.stage == "doc"]
    if renderings:
        seen = {(document.source, document.rendering) for document in documents}
        pages = [e for e in examples if e.stage == "chunk" and (e.source, e.rendering) not in seen]
        documents += full_page_documents([page for page in pages if page.page_type is not None])
    chosen = []
    for example in documents:
        if example.collection != "dclm" and example.page_type is None:
            continue
        if example.page_type in PAGE_TYPES_LEFT_OUT:
            continue
        if example.page_type in PAGE_TYPE_DROPS:
            example = replace(example, drop=True)
        chosen.append(example)
    return chosen


def collection_weights(examples: Sequence[Example]) -> torch.Tensor:
    """Each example's loss weight: every collection sums to the same total."""
    sizes = Counter(example.collection for example in examples)
    return torch.tensor([1.0 / sizes[example.collection] for example in examples])


def fitted_probe(pooled: torch.Tensor, examples: Sequence[Example], rows: Sequence[int]) -> DocProbe:
    chosen = [examples[i] for i in rows]
    probe = DocProbe(pooled.shape[1])
    drops = [bool(example.drop) for example in chosen]
    return fit_doc_probe(probe, pooled[list(rows)], drops, PENALTY, collection_weights(chosen))


@torch.no_grad()
def validate(pooled: torch.Tensor, examples: Sequence[Example], threshold: float, folds: int = 5) -> dict:
    """DCLM accuracy and keep-F1 cross-validated (mean over 3 shufflings); WCXB-style collections by site
    fold: the share kept of reader pages with >= MIN_GOLD_WORDS gold words, full page (all renderings, and
    each: `page@RENDERING`) and gold text."""
    dclm = [i for i, e in enumerate(examples) if e.collection == "dclm"]
    others = [i for i, e in enumerate(examples) if e.collection != "dclm"]
    report: dict = {}
    if len(dclm) >= 2 * folds:

        def fit(held_out: set[int]) -> DocProbe:  # the other collections always in training
            return fitted_probe(pooled, examples, [i for i in dclm if i not in held_out] + others)

        runs = []
        for repeat in range(3):
            probabilities = cross_validated_probabilities(pooled, dclm, fit, folds, repeat)
            drops = [probabilities[i] >= threshold for i in dclm]
            runs.append(doc_scores(drops, [examples[i] for i in dclm]))
        report["dclm"] = {m: round(sum(r[m] for r in runs) / len(runs), 4) for m in ("accuracy", "keep_f1")}
    assignment = dict(zip(others, site_folds([examples[i] for i in others], folds), strict=True))
    gold_words = {e.source: sum(len(line.split()) for line in e.lines) for e in examples if e.source.endswith("/gold")}
    kept: dict[str, list[bool]] = {"page": [], "gold": []}
    for fold in range(folds):
        test = [i for i in others if assignment[i] == fold]
        if not test:
            continue
        held_out = set(test)
        probe = fitted_probe(pooled, examples, [i for i in range(len(examples)) if i not in held_out])
        keeps = (torch.sigmoid(probe(pooled[test])) < threshold).tolist()
        for index, keep in zip(test, keeps, strict=True):
            example = examples[index]
            kind = "gold" if example.source.endswith("/gold") else "page"
            words = gold_words.get(example.source if kind == "gold" else f"{example.source}/gold", 0)
            if example.page_type in READER_TYPES and words >= MIN_GOLD_WORDS:
                kept[kind].append(keep)
                if kind == "page" and example.rendering:
                    kept.setdefault(f"page@{example.rendering}", []).append(keep)
    for kind, values in kept.items():
        if values:
            report[f"reader_pages_kept_{kind}"] = {"share": round(sum(values) / len(values), 4), "pages": len(values)}
    return report


def with_new_probe(
    tagger: Path, statistics: bool, piece_words: int | None = None, pieces_above: int | None = None
) -> tuple[TaggerConfig, TaggerHeads]:
    """The config and heads of the tagger directory `tagger` with an unfitted doc probe, reading
    `document_statistics` too when `statistics`, and lines longer than `pieces_above` words (default:
    `piece_words`) in pieces of `piece_words` words (`TaggerConfig.doc_reading`); its line head as trained."""
    trained = TaggerConfig.load(tagger)
    pieces = {"doc_piece_words": piece_words, "doc_pieces_above": pieces_above if piece_words else None}
    config = replace(trained, doc_statistics=statistics, **pieces, features_version=FEATURES_VERSION)
    line_head = {
        name: value
        for name, value in TaggerHeads.load(tagger, trained).state_dict().items()
        if not name.startswith("doc.")
    }
    heads = TaggerHeads.for_config(config)
    heads.load_state_dict({**heads.state_dict(), **line_head})
    return config, heads.eval()


def refit_doc_probe(
    tagger: Path,
    examples: Sequence[Example],
    states: Path,
    output: Path,
    dtype: str = "float32",
    statistics: bool = True,
    renderings: bool = True,
    piece_words: int | None = None,
    pieces_above: int | None = None,
) -> dict:
    """Write `output`: the tagger of directory `tagger` with its doc probe refitted on `probe_examples`
    (line states computed in `dtype`, `StateStore`; with `statistics`, the probe reads `document_statistics`
    too; with `renderings`, it learns from every rendering of the labelled pages; with `piece_words`, it reads
    lines longer than `pieces_above` words, default `piece_words`, in pieces of that many words); the
    validation report is recorded in its config (`metrics["doc"]`) and returned."""
    config, heads = with_new_probe(tagger, statistics, piece_words, pieces_above)
    documents = as_read_at_run_time(probe_examples(examples, renderings), config)
    if not documents:
        raise ValueError("no doc examples from DCLM or a page-typed collection in the seed set")
    store = StateStore(states, config, dtype=dtype)
    pooled = pool_documents(heads, store.all(documents), [document.lines for document in documents], config)
    report = validate(pooled, documents, config.doc_threshold)
    heads.doc.load_state_dict(fitted_probe(pooled, documents, range(len(documents))).state_dict())
    config.doc_languages = fitted_languages(documents)
    config.metrics = {  # the old probe's check on the labelled pages no longer describes this one
        **{name: value for name, value in config.metrics.items() if name != "doc_labelled_pages"},
        "doc": {**report, "documents": len(documents), "penalty": PENALTY}
        | {"statistics": statistics, "renderings": renderings}
        | {"piece_words": config.doc_piece_words, "pieces_above": config.doc_pieces_above},
    }
    save_tagger(heads, config, Path(output))
    return report
