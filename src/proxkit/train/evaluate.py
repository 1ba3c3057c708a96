"""`prox evaluate`: any refining model (generative or tagger, any backend) on labelled seed examples,
through the same prompts and executor as `prox refine`, next to the rule baselines on the same data."""

from __future__ import annotations

from collections.abc import Sequence

from proxkit.models import ModelSpec
from proxkit.program import Mode, Stage, execute_doc, parse_program, removed_lines
from proxkit.prompts import (
    CHUNK_MAX_NEW_TOKENS,
    TokenizationMode,
    chunk_document,
    chunk_prompt_ids,
    doc_prompt_ids,
    line_cost,
)
from proxkit.train.metrics import accuracy, binary_f1, c4_line_rule, chunk_report
from proxkit.train.seed import Example


def write_chunk_programs(spec: ModelSpec, pages: Sequence[Example], mode: Mode = Mode.STRICT) -> list[str]:
    """The merged chunk program the model writes for each page, as `prox refine` would."""
    tokenizer = spec.load_tokenizer()
    writer = spec.load_writer(tokenizer)
    tokenization = TokenizationMode.for_mode(mode)
    budget, context = spec.chunk_limits
    programs = []
    for page in pages:
        chunks = chunk_document("\n".join(page.lines), line_cost(tokenizer), budget)
        prompts = [
            chunk_prompt_ids(chunk.text, tokenizer, tokenization, context - CHUNK_MAX_NEW_TOKENS).ids
            for chunk in chunks
        ]
        programs.append("\n".join(g.text.strip(" ") for g in writer.generate(prompts, 256)))
    writer.close()
    return programs


def evaluate_chunk(spec: ModelSpec, pages: Sequence[Example], mode: Mode = Mode.STRICT) -> dict:
    programs = write_chunk_programs(spec, pages, mode)
    removes = [
        removed_lines(len(page.lines), parse_program(program, Stage.CHUNK, mode))
        for page, program in zip(pages, programs, strict=True)
    ]
    rule = [[not keep for keep in c4_line_rule(page.lines)] for page in pages]
    return {"model": chunk_report(pages, removes), "c4_line_rule": chunk_report(pages, rule)}


def evaluate_doc(spec: ModelSpec, documents: Sequence[Example], mode: Mode = Mode.STRICT) -> dict:
    tokenizer = spec.load_tokenizer()
    writer = spec.load_writer(tokenizer)
    tokenization = TokenizationMode.for_mode(mode)
    texts = ["\n".join(document.lines) for document in documents]
    prompts = [doc_prompt_ids(text, tokenizer, tokenization).ids for text in texts]
    generations = writer.generate(prompts, 24)
    writer.close()
    drops = [execute_doc(t, g.text.strip(" "), mode=mode).dropped for t, g in zip(texts, generations, strict=True)]
    return {"model": doc_scores(drops, documents), "gopher_c4_fineweb_rules": rule_doc_scores(documents)}


def doc_scores(drops: Sequence[bool], documents: Sequence[Example]) -> dict:
    """Accuracy and keep-F1 (keep is the positive class) of predicted drops against the labels."""
    keeps = [not drop for drop in drops]
    actual = [not document.drop for document in documents]
    return {
        "accuracy": round(accuracy(keeps, actual), 4),
        "keep_f1": round(binary_f1(keeps, actual).f1, 4),
        "documents": len(documents),
    }


def rule_doc_scores(documents: Sequence[Example]) -> dict:
    """`doc_scores` of datatrove's Gopher + C4 + FineWeb rules (their defaults) on the same documents."""
    from proxkit.baselines import rule_decision, rule_filters

    filters = rule_filters()
    return doc_scores([not rule_decision("\n".join(d.lines), filters)[0] for d in documents], documents)
