"""How a refining model writes a document's programs: the prompts it reads and the decoding it runs, in one
place for `prox refine` (the pipeline steps), `prox evaluate` and the benchmarks, so what is scored is what
is run.

Strict mode constrains decoding to the program language (a doc decision read off one forward pass, chunk
programs under the grammar); reference mode decodes freely, as the authors' engine did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from proxkit.layout import content_lines, content_text
from proxkit.models import Generation, ModelSpec, ProgramWriter
from proxkit.program import Mode, Normalize, Program, Stage, parse_program, removed_lines
from proxkit.program.grammar import CHUNK_GRAMMAR, DOC_PROGRAMS
from proxkit.prompts import (
    CHUNK_MAX_NEW_TOKENS,
    DOC_MAX_NEW_TOKENS,
    Chunk,
    PromptIds,
    TokenizationMode,
    Tokenizer,
    chunk_document,
    chunk_prompt_ids,
    doc_prompt_ids,
    line_cost,
    number_line,
)

STRICT_DOC_MAX_NEW_TOKENS = 24  # a doc program is one call; the reference allowed 2000


def default_max_new_tokens(stage: Stage, mode: Mode) -> int:
    if stage is Stage.CHUNK:
        return CHUNK_MAX_NEW_TOKENS
    return DOC_MAX_NEW_TOKENS if Mode(mode) is Mode.REFERENCE else STRICT_DOC_MAX_NEW_TOKENS


def doc_prompts(texts: Sequence[str], model: ModelSpec, tokenizer: Tokenizer, mode: Mode) -> list[PromptIds]:
    """The doc prompts of documents; a tagger reads their content lines only (blank lines cost no budget),
    with `plain_markup` as plain text (nor do link addresses)."""
    plain = model.reads_content_only and model.tagger_config().plain_markup
    read = partial(content_text, plain=plain) if model.reads_content_only else str
    return [doc_prompt_ids(read(text), tokenizer, TokenizationMode.for_mode(mode)) for text in texts]


@dataclass(frozen=True)
class ChunkPrompts:
    """A document's chunk prompts and whether each fits the model's context (one that does not is answered
    with nothing, as the reference engine did; the clean prompts always fit)."""

    prompts: list[PromptIds]
    context: int

    @property
    def fits(self) -> list[bool]:
        return [len(prompt.ids) < self.context for prompt in self.prompts]


def chunk_prompts(
    text: str,
    tokenizer: Tokenizer,
    mode: Mode,
    budget: int,
    context: int,
    max_new_tokens: int,
    content_only: bool = False,
) -> ChunkPrompts:
    """The prompts of a document's chunks of numbered lines (global numbers), `budget` page tokens each; for
    a reader of content lines only (`content_only`), the chunks it was trained on (`content_chunks`)."""
    tokenization = TokenizationMode.for_mode(mode)
    cut = content_chunks if content_only else chunk_document
    prompts = [
        chunk_prompt_ids(chunk.text, tokenizer, tokenization, context - max_new_tokens)
        for chunk in cut(text, line_cost(tokenizer), budget)
    ]
    return ChunkPrompts(prompts, context)


def content_chunks(text: str, cost: Callable[[str], int], budget: int) -> list[Chunk]:
    """The chunks of a text as a reader of its content lines (`proxkit.layout`) is trained on them, whatever
    the layout: its content lines, numbered among themselves, packed by `chunk_document`; each chunk then
    spans the text's own lines (global numbers), a later one from just after the previous chunk's last
    content line, so the blank lines between two chunks open the second."""
    lines = text.split("\n")
    content = content_lines(lines)
    if not content.lines:
        return chunk_document(text, cost, budget)
    read: dict[int, list[str]] = {}  # an original line that holds other line breaks stays in one chunk
    for position, line in zip(content.positions, content.lines, strict=True):
        read.setdefault(position, []).append(line)
    positions = list(read)
    packed = chunk_document("\n".join(" ".join(pieces) for pieces in read.values()), cost, budget)
    starts = [0] + [positions[chunk.first_line - 1] + 1 for chunk in packed[1:]]
    ends = [*starts[1:], len(lines)]
    return [
        replace(
            chunk,
            first_line=start,
            last_line=end - 1,
            text="\n".join(number_line(i, lines[i]) for i in range(start, end)),
        )
        for chunk, start, end in zip(packed, starts, ends, strict=True)
    ]


def decode(
    writer: ProgramWriter, stage: Stage, mode: Mode, prompts: Sequence[Sequence[int]], max_new_tokens: int
) -> list[Generation]:
    """The programs of the prompts, decoded as the mode says."""
    if not prompts:
        return []
    if Mode(mode) is Mode.REFERENCE:
        return writer.generate(prompts, max_new_tokens)
    if stage is Stage.DOC:
        return writer.choose(prompts, DOC_PROGRAMS, max_new_tokens)
    return writer.generate(prompts, max_new_tokens, grammar=CHUNK_GRAMMAR)


def decode_chunks(
    writer: ProgramWriter, mode: Mode, documents: Sequence[ChunkPrompts], max_new_tokens: int
) -> list[list[Generation]]:
    """Each document's chunk programs, all prompts decoded in one call; a prompt over the context gets ""."""
    flat = [
        (prompt, fits) for document in documents for prompt, fits in zip(document.prompts, document.fits, strict=True)
    ]
    answers = iter(decode(writer, Stage.CHUNK, mode, [p.ids for p, fits in flat if fits], max_new_tokens))
    generations = iter([next(answers) if fits else Generation("") for _, fits in flat])
    return [[next(generations) for _ in document.prompts] for document in documents]


def document_program(text: str, generations: Sequence[Generation], content_only: bool = False) -> str:
    """A document's chunk program: its chunks' programs joined (`merged_program`); for a reader of content
    lines that read it in several chunks, with the paragraph breaks decided once over the whole text
    (`with_breaks_between_kept_text`): a chunk alone cannot know whether kept text came before it."""
    merged = merged_program(generations)
    return with_breaks_between_kept_text(text, merged) if content_only and len(generations) > 1 else merged


def with_breaks_between_kept_text(text: str, program_text: str) -> str:
    """The program with its removal of blank lines decided by `ContentLines.spread` over the whole text, from
    what it removes of the content lines (its `normalize` calls kept, in order); a program with errors as
    it is."""
    program = parse_program(program_text, Stage.CHUNK)
    if program.errors:
        return program_text
    lines = text.split("\n")
    removed = removed_lines(len(lines), program)
    content = content_lines(lines)
    spread = content.spread([removed[position] for position in content.positions])
    normalizes = tuple(call for call in program.calls if isinstance(call, Normalize))
    return Program(Program.removing(spread).calls + normalizes).render()


def merged_program(generations: Sequence[Generation]) -> str:
    """A document's chunk programs joined into its one chunk program."""
    return "\n".join(generation.text.strip(" ") for generation in generations)
