"""How a refiner's prompts are cut: a reader of content lines gets the chunks it was trained on, whatever the
layout of the text."""

from itertools import pairwise

import pytest
import torch
from safetensors.torch import save_file

from proxkit.layout import content_lines
from proxkit.models import Generation
from proxkit.models.tagger import HEADS_FILE, TaggerConfig, TaggerHeads, TaggerWriter
from proxkit.models.tokenizers import load_tokenizer
from proxkit.program import Guards, Mode, execute_chunk
from proxkit.prompts import WHOLE_PAGE, chunk_document, line_cost
from proxkit.writing import (
    chunk_prompts,
    content_chunks,
    decode_chunks,
    document_program,
    with_breaks_between_kept_text,
)

PARAGRAPHS = [
    f"Paragraph {index}: " + " ".join(["the council approved the lanes"] * (1 + index % 4)) + "." for index in range(12)
]
LAYOUTS = {
    "lines": lambda blocks: "\n".join(blocks),
    "blank lines": lambda blocks: "\n\n".join(blocks),
    "crlf": lambda blocks: "\r\n\r\n".join(blocks) + "\r\n",
    "trailing spaces": lambda blocks: "".join(f"{block}  \n" for block in blocks),
    "blank runs": lambda blocks: "\n\n\n" + "\n \n\n\t\n".join(blocks) + "\n\n",
}


def cost(numbered: str) -> int:
    return len(numbered) // 4 + 1


def test_content_chunks_hold_the_same_content_lines_in_every_layout_and_tile_the_text():
    def content_of(chunk) -> list[str]:
        return content_lines([line.split("]", 1)[1] for line in chunk.text.split("\n")]).lines

    expected = chunk_document("\n".join(PARAGRAPHS), cost, 60)
    assert len(expected) > 3
    for layout, render in LAYOUTS.items():
        text = render(PARAGRAPHS)
        chunks = content_chunks(text, cost, 60)
        assert [content_of(chunk) for chunk in chunks] == [content_of(chunk) for chunk in expected], layout
        assert [chunk.tokens for chunk in chunks] == [chunk.tokens for chunk in expected]
        assert chunks[0].first_line == 0 and chunks[-1].last_line == text.count("\n")
        assert all(after.first_line == before.last_line + 1 for before, after in pairwise(chunks))
    assert content_chunks("\n".join(PARAGRAPHS), cost, 60) == expected  # plain lines: the reference's chunks
    assert content_chunks("\n \n", cost, 60) == chunk_document("\n \n", cost, 60)  # no content: one chunk


def test_a_line_of_lines_ending_in_lone_cr_stays_in_one_chunk_and_its_pieces_are_read():
    def content_of(chunk) -> list[str]:
        return content_lines([line.split("]", 1)[1] for line in chunk.text.split("\n")]).lines

    text = "\n".join("\r".join(PARAGRAPHS[start : start + 3]) for start in range(0, 12, 3))
    chunks = content_chunks(text, cost, 60)
    assert len(chunks) > 1 and [line for chunk in chunks for line in content_of(chunk)] == PARAGRAPHS
    assert all(after.first_line == before.last_line + 1 for before, after in pairwise(chunks))
    assert all(len(content_of(chunk)) % 3 == 0 for chunk in chunks)  # no line of three cut between chunks
    (whole,) = content_chunks("\u2028".join(PARAGRAPHS), cost, 60)  # one line: one chunk, however long
    assert content_of(whole) == PARAGRAPHS


WHOLE_PAGE_LAYOUTS = {
    **LAYOUTS,
    "lone cr": lambda blocks: "\r".join(blocks) + "\r",
    "line separators": lambda blocks: "\u2028\n".join(blocks[:5]) + "\n" + "\u2028".join(blocks[5:]),
}


@pytest.mark.parametrize(("budget", "layouts"), [(60, LAYOUTS), (0, WHOLE_PAGE_LAYOUTS)], ids=["chunks", "page"])
def test_a_tagger_keeps_the_same_words_in_every_layout(tmp_path, tiny_backbone, budget, layouts):
    """Read in chunks, or a whole page per prompt: then lines of lines (lone CR, U+2028) lose their removed
    pieces by `normalize` as the lines of the plain layout are removed."""
    config = TaggerConfig(base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32, chunk_budget=budget)
    torch.manual_seed(0)
    heads = TaggerHeads.for_config(config)
    save_file(heads.state_dict(), str(tmp_path / HEADS_FILE))
    tokenizer = load_tokenizer(config.base)
    config.save(tmp_path)
    probe = TaggerWriter(tmp_path, tokenizer, dtype="float32")
    texts = {layout: render(PARAGRAPHS) for layout, render in layouts.items()}
    page_budget = budget or WHOLE_PAGE

    def refine(writer) -> dict[str, tuple[str, list[str]]]:
        prompts = [chunk_prompts(t, tokenizer, Mode.STRICT, page_budget, WHOLE_PAGE, 256, True) for t in texts.values()]
        answers = decode_chunks(writer, Mode.STRICT, prompts, 256)
        programs = [document_program(text, chunks, True) for text, chunks in zip(texts.values(), answers, strict=True)]
        refined = [execute_chunk(text, program).text for text, program in zip(texts.values(), programs, strict=True)]
        return {layout: (p, text.split()) for layout, p, text in zip(texts, programs, refined, strict=True)}

    # the threshold at the median line probability of the chunks as read (each numbered from 0): some lines
    # kept, some removed
    probabilities = []
    with torch.no_grad():
        for chunk in content_chunks(texts["lines"], line_cost(tokenizer), page_budget):
            lines = [line.split("]", 1)[1] for line in chunk.text.split("\n")]
            states = config.head_inputs(probe.backbone.line_states(lines), lines)
            probabilities += torch.sigmoid(heads.line_logits(states)).tolist()
    config.line_threshold = sorted(probabilities)[len(probabilities) // 2]
    config.save(tmp_path)
    refined = refine(TaggerWriter(tmp_path, tokenizer, dtype="float32"))
    words = {layout: kept for layout, (_, kept) in refined.items()}
    assert 0 < len(words["lines"]) < len(" ".join(PARAGRAPHS).split())
    assert all(kept == words["lines"] for kept in words.values()), words
    if budget == 0:
        assert "normalize(" in refined["lone cr"][0] and "normalize(" not in refined["lines"][0]


def test_the_paragraph_breaks_of_a_text_read_in_chunks_are_decided_over_the_whole_text():
    def refined(text: str, chunk_programs: list[str]) -> str:
        program = document_program(text, [Generation(p) for p in chunk_programs], content_only=True)
        return execute_chunk(text, program, guards=Guards(min_word_ratio=0, min_words=0)).text

    # chunks [000]R [001] | [002]K, each program written by its chunk alone
    assert refined("R\n\nK", ["remove_lines(line_start=0, line_end=1)", "keep_chunk()"]) == "K"
    # chunks [000]K1 [001] [002]R | [003]K2: the break before R is the one between K1 and K2
    text = "K1\n\nR\nK2"
    assert refined(text, ["remove_lines(line_start=1, line_end=2)", "keep_chunk()"]) == "K1\n\nK2"
    # chunks [000]K1 | [001] [002]K2: a later chunk's opening break stays after kept text
    assert refined("K1\n\nK2", ["keep_chunk()", "remove_lines(line_start=1, line_end=1)"]) == "K1\n\nK2"
    one_chunk = [Generation("remove_lines(line_start=1, line_end=2)")]
    assert document_program(text, one_chunk, content_only=True) == one_chunk[0].text  # as the tagger wrote it
    assert document_program(text, [Generation("keep_chunk()")] * 2) == "keep_chunk()\nkeep_chunk()"  # generative
    words = 'remove_lines(line_start=0, line_end=0)\nnormalize(source_str="K2", target_str="k2")'
    assert with_breaks_between_kept_text("R\n\nK2", words) == words.replace("0)", "1)", 1)  # normalize kept
    assert with_breaks_between_kept_text(text, "remove_lines(5, 3)") == "remove_lines(5, 3)"  # errors: as written


def test_a_doc_prompt_holds_markdown_as_text_for_a_tagger_that_reads_it_so(tmp_path, tiny_backbone):
    from proxkit.models import resolve
    from proxkit.program import Stage
    from proxkit.writing import doc_prompts

    markdown = "# Lanes\n\n* [Home](https://example.org/home) | [About](/about)\n\nThe council **approved** [them](/a)."
    held = {}
    for plain_markup in (True, False):
        config = TaggerConfig(
            base=str(tiny_backbone), depth=4, layers=(2, 4), hidden_size=32, plain_markup=plain_markup
        )
        directory = tmp_path / str(plain_markup)
        directory.mkdir()
        save_file(TaggerHeads.for_config(config).state_dict(), str(directory / HEADS_FILE))
        config.save(directory)
        spec = resolve(str(directory), Stage.DOC)
        tokenizer = spec.load_tokenizer()
        (prompt,) = doc_prompts([markdown], spec, tokenizer, Mode.STRICT)
        held[plain_markup] = tokenizer.decode(prompt.ids)
    assert "Lanes\n* Home | About\nThe council approved them." in held[True] and "example.org" not in held[True]
    assert "# Lanes\n* [Home](https://example.org/home) | [About](/about)\n" in held[False]
