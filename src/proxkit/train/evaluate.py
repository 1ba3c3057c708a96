"""`prox evaluate`: any refining model (generative or tagger, any backend) on labelled seed examples,
through the same prompts and executor as `prox refine`, next to the rule baselines on the same data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from proxkit.annotate.human import doc_decision
from proxkit.inline_noise import words
from proxkit.layout import content_lines
from proxkit.models import ModelSpec
from proxkit.program import Mode, Normalize, Stage, execute_doc, parse_program, removed_lines
from proxkit.train.metrics import (
    accuracy,
    binary_f1,
    c4_line_rule,
    chunk_report,
    inline_report,
    words_kept_share,
)
from proxkit.train.seed import DOC_KEEP_MIN_WORDS, MAX_LINES, Example
from proxkit.writing import chunk_prompts, decode, decode_chunks, default_max_new_tokens, doc_prompts, document_program


def write_chunk_programs(spec: ModelSpec, pages: Sequence[Example], mode: Mode = Mode.STRICT) -> list[str]:
    """The merged chunk program the model writes for each page, exactly as `prox refine` writes it."""
    tokenizer = spec.load_tokenizer()
    writer = spec.load_writer(tokenizer)
    budget, context = spec.chunk_limits
    max_new_tokens = default_max_new_tokens(Stage.CHUNK, mode)
    content_only = spec.reads_content_only
    prompts = [
        chunk_prompts("\n".join(p.lines), tokenizer, mode, budget, context, max_new_tokens, content_only) for p in pages
    ]
    answers = decode_chunks(writer, mode, prompts, max_new_tokens)
    programs = [
        document_program("\n".join(page.lines), generations, content_only)
        for page, generations in zip(pages, answers, strict=True)
    ]
    writer.close()
    return programs


def write_doc_programs(spec: ModelSpec, texts: Sequence[str], mode: Mode = Mode.STRICT) -> list[str]:
    """The doc program the model writes for each text, exactly as `prox refine` writes it."""
    tokenizer = spec.load_tokenizer()
    writer = spec.load_writer(tokenizer)
    prompts = [prompt.ids for prompt in doc_prompts(texts, spec, tokenizer, mode)]
    generations = decode(writer, Stage.DOC, mode, prompts, default_max_new_tokens(Stage.DOC, mode))
    writer.close()
    return [generation.text.strip(" ") for generation in generations]


GROUPINGS = ("collection", "rendering", "language", "page_type")  # what `--by` may split a report by


def evaluate_chunk(spec: ModelSpec, pages: Sequence[Example], mode: Mode = Mode.STRICT, by: Sequence[str] = ()) -> dict:
    """Chunk-stage scores of the model and of the C4 line rule on the pages (`chunk_report` of the lines kept,
    and the share of words kept), and what the model's `normalize` calls did (`inline_report`); with `by`
    (fields of `GROUPINGS`), the same per group of pages too (`groups`, keyed `field=value,...`)."""
    parsed = [parse_program(program, Stage.CHUNK, mode) for program in write_chunk_programs(spec, pages, mode)]
    removes = [removed_lines(len(page.lines), program) for page, program in zip(pages, parsed, strict=True)]
    calls = [[call for call in program.calls if isinstance(call, Normalize)] for program in parsed]
    rule = [[not keep for keep in c4_line_rule(page.lines)] for page in pages]

    def scores(rows: Sequence[int]) -> dict:
        chosen = [pages[i] for i in rows]
        report = {
            system: chunk_report(chosen, [flags[i] for i in rows])
            | {"words_kept": words_kept_share(chosen, [flags[i] for i in rows])}
            for system, flags in (("model", removes), ("c4_line_rule", rule))
        }
        report["model"]["normalize"] = inline_report(chosen, [removes[i] for i in rows], [calls[i] for i in rows])
        return report

    report = scores(range(len(pages)))
    if by:
        report["groups"] = {name: scores(rows) for name, rows in group_rows(pages, by).items()}
    return report


CLEAN_TEXT = "gold"  # the rendering of a page's gold read alone (`clean_text_pages`)


def clean_text_pages(pages: Sequence[Example]) -> list[Example]:
    """Each page's gold alone (once per page, whatever its renderings; rendering `CLEAN_TEXT`): text
    already cleaned, every line content, as a corpus that went through an extractor's main-content filter
    reaches `prox refine`."""
    seen, clean = set(), []
    for page in pages:
        lines = content_lines((page.gold or "").split("\n")).lines[:MAX_LINES]
        if page.source in seen or not lines:
            continue
        seen.add(page.source)
        clean.append(replace(page, lines=lines, remove=[False] * len(lines), rendering=CLEAN_TEXT))
    return clean


def clean_text_documents(pages: Sequence[Example], min_words: int = DOC_KEEP_MIN_WORDS) -> list[Example]:
    """Each page's gold alone (`clean_text_pages`) as a doc-stage example labelled keep, where the gold holds
    at least `min_words` words (as the seed importers count a page's doc keep): text a reader would keep,
    already cleaned once."""
    return [
        replace(page, stage="doc", remove=None, drop=False)
        for page in clean_text_pages(pages)
        if len(words(page.gold or "")) >= min_words
    ]


def full_page_documents(pages: Sequence[Example], min_words: int = DOC_KEEP_MIN_WORDS) -> list[Example]:
    """Each chunk page, in each of its renderings, as a doc-stage example labelled as the seed importers
    label a page (`doc_decision`: drop when none of its lines is content, keep when its content holds at
    least `min_words` words; pages in between are left out). The seed's own doc examples are of one
    rendering; these judge the doc stage on every extractor's text of the same pages."""
    documents = []
    for page in pages:
        keep = doc_decision(page.lines, [not noise for noise in page.remove or []], min_words)
        if keep is not None:
            documents.append(replace(page, stage="doc", remove=None, drop=not keep))
    return documents


def check_groupings(by: Sequence[str]) -> None:
    """ValueError unless every field of `by` is one of `GROUPINGS`."""
    unknown = [field for field in by if field not in GROUPINGS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; known: {', '.join(GROUPINGS)}")


def group_rows(examples: Sequence[Example], by: Sequence[str]) -> dict[str, list[int]]:
    """The indices of the examples per value of the fields `by` (`collection=wcxb,rendering=inscriptis`),
    in sorted order of the names."""
    check_groupings(by)
    rows: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        name = ",".join(f"{field}={getattr(example, field) or '-'}" for field in by)
        rows.setdefault(name, []).append(index)
    return dict(sorted(rows.items()))


def evaluate_doc(
    spec: ModelSpec, documents: Sequence[Example], mode: Mode = Mode.STRICT, by: Sequence[str] = ()
) -> dict:
    """Doc-stage scores of the model and of the rule filters; with `by`, per group of documents too."""
    texts = ["\n".join(document.lines) for document in documents]
    programs = write_doc_programs(spec, texts, mode)
    drops = [execute_doc(text, program, mode=mode).dropped for text, program in zip(texts, programs, strict=True)]
    report = {"model": doc_scores(drops, documents), "gopher_c4_fineweb_rules": rule_doc_scores(documents)}
    if by:
        report["groups"] = {
            name: {"model": doc_scores([drops[i] for i in rows], [documents[i] for i in rows])}
            for name, rows in group_rows(documents, by).items()
        }
    return report


def doc_scores(drops: Sequence[bool], documents: Sequence[Example]) -> dict:
    """Accuracy and keep-F1 (keep is the positive class) of predicted drops against the labels, and the share
    of each class decided right (`kept_of_keeps`, `dropped_of_drops`; None without documents of the class):
    on a set of nearly all keeps, accuracy alone is the keep rate."""
    keeps = [not drop for drop in drops]
    actual = [not document.drop for document in documents]

    def share_right(label: bool) -> float | None:
        decided = [keep for keep, keep_label in zip(keeps, actual, strict=True) if keep_label == label]
        return round(sum(keep == label for keep in decided) / len(decided), 4) if decided else None

    return {
        "accuracy": round(accuracy(keeps, actual), 4),
        "keep_f1": round(binary_f1(keeps, actual).f1, 4),
        "kept_of_keeps": share_right(True),
        "dropped_of_drops": share_right(False),
        "documents": len(documents),
    }


def rule_doc_scores(documents: Sequence[Example]) -> dict:
    """`doc_scores` of datatrove's Gopher + C4 + FineWeb rules (their defaults) on the same documents."""
    from proxkit.baselines import rule_decision, rule_filters

    filters = rule_filters()
    return doc_scores([not rule_decision("\n".join(d.lines), filters)[0] for d in documents], documents)
