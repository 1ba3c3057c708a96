"""Prompt strings, line numbering, chunking, and token-exact ids with the Llama-2 tokenizer."""

from pathlib import Path

import pytest

from proxkit.prompts import (
    Chunk,
    SentencePieceTokenizer,
    TokenizationMode,
    chunk_document,
    chunk_prompt,
    chunk_prompt_ids,
    doc_prompt,
    doc_prompt_ids,
    line_cost,
    number_line,
)

LLAMA2 = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers" / "llama2"
needs_llama2 = pytest.mark.skipif(
    not (LLAMA2 / "tokenizer.model").is_file(), reason=f"the Llama-2 tokenizer is not at {LLAMA2} (../shared absent)"
)
SPEC_CHUNK = "[000]Home | About | Contact\n[001]Welcome to our site.\n[002]Copyright 2024"
SPEC_PROMPT = (
    "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
    "[doc]\n[000]Home | About | Contact\n[001]Welcome to our site.\n[002]Copyright 2024\n[/doc] [/INST]"
)


@pytest.fixture(scope="module")
def llama2():
    return SentencePieceTokenizer(LLAMA2)


def words(text: str) -> int:
    return len(text.split())


def test_chunk_prompt_is_the_spec_string():
    assert chunk_prompt(SPEC_CHUNK) == SPEC_PROMPT


def test_doc_prompt_is_the_raw_document_without_trailing_whitespace():
    """The Llama-2 template strips system block and content together: leading whitespace stays."""
    assert doc_prompt("\n  Title\n\nBody text.  \n") == (
        "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
        "\n  Title\n\nBody text. [/INST]"
    )


@pytest.mark.parametrize(("index", "numbered"), [(0, "[000]x"), (4, "[004]x"), (999, "[999]x"), (1234, "[1234]x")])
def test_line_numbers_are_zero_padded_to_three_digits(index, numbered):
    assert number_line(index, "x") == numbered


def test_chunks_pack_lines_greedily_with_global_numbers():
    text = "a b c\nd e\n\nf g h i\nj"
    chunks = chunk_document(text, cost=words, budget=5)  # "[000]a b c" costs 3 words, "[002]" costs 1
    assert chunks == [
        Chunk(0, 1, "[000]a b c\n[001]d e", 5),  # full: 3 + 2
        Chunk(2, 3, "[002]\n[003]f g h i", 5),  # an empty line keeps its number
        Chunk(4, 4, "[004]j", 1),
    ]


def test_a_line_over_the_budget_is_a_chunk_of_its_own():
    text = "a b\n" + " ".join(["w"] * 9) + "\nc d"
    chunks = chunk_document(text, cost=words, budget=4)
    assert [(chunk.first_line, chunk.last_line, chunk.over_budget) for chunk in chunks] == [
        (0, 0, False),
        (1, 1, True),
        (2, 2, False),
    ]
    assert chunks[1].tokens == 9


def test_chunks_cover_every_line_once_in_order():
    text = "\n".join(f"line {i} " + "x " * (i % 7) for i in range(100))
    chunks = chunk_document(text, cost=lambda line: len(line) // 4 + 1, budget=40)
    numbered = "\n".join(chunk.text for chunk in chunks).split("\n")
    assert numbered == [number_line(i, line) for i, line in enumerate(text.split("\n"))]
    assert all(chunk.tokens <= 40 or chunk.over_budget for chunk in chunks)
    assert [chunk.first_line for chunk in chunks[1:]] == [chunk.last_line + 1 for chunk in chunks[:-1]]


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="budget"):
        chunk_document("x", cost=len, budget=0)


@needs_llama2
def test_reference_chunk_prompt_has_two_bos_and_the_legacy_ids(llama2):
    ids = chunk_prompt_ids(SPEC_CHUNK, llama2, TokenizationMode.REFERENCE).ids
    assert ids[:5] == [1, 1, 518, 25580, 29962]
    assert ids[2:] == llama2.encode(SPEC_PROMPT.removeprefix("<s>"))


@needs_llama2
def test_clean_chunk_prompt_has_one_bos(llama2):
    prompt = chunk_prompt_ids(SPEC_CHUNK, llama2, TokenizationMode.CLEAN)
    assert prompt.ids[:4] == [1, 518, 25580, 29962]
    assert prompt.ids[1:] == llama2.encode(SPEC_PROMPT.removeprefix("<s>"))
    assert not prompt.truncated


@needs_llama2
def test_line_cost_counts_the_bos(llama2):
    assert line_cost(llama2)("[000]Home") == 1 + len([518, 29900, 29900, 29900, 29962, 11184])


@needs_llama2
def test_long_doc_prompt_loses_inst_in_reference_mode_and_keeps_it_in_clean_mode(llama2):
    document = "\n".join(f"Paragraph {i}: the council met again and talked about the roads." for i in range(400))
    closing = llama2.encode("x [/INST]")[1:]  # "▁[", "/", "INST", "]"
    reference = doc_prompt_ids(document, llama2, TokenizationMode.REFERENCE)
    assert len(reference.ids) == 2000 and reference.truncated
    assert reference.ids[-len(closing) :] != closing
    clean = doc_prompt_ids(document, llama2, TokenizationMode.CLEAN)
    assert clean.truncated and len(clean.ids) <= 2000
    assert clean.ids[-len(closing) :] == closing
    assert clean.ids[:4] == [1, 518, 25580, 29962]
    assert llama2.decode(clean.ids[1:]).startswith("[INST] <<SYS>>\nYou are a helpful")
    assert "Paragraph 100:" in llama2.decode(clean.ids)


@needs_llama2
def test_a_short_doc_prompt_is_the_same_in_both_modes(llama2):
    reference = doc_prompt_ids("A short page.", llama2, TokenizationMode.REFERENCE)
    clean = doc_prompt_ids("A short page.", llama2, TokenizationMode.CLEAN)
    assert reference == clean
    assert not clean.truncated
    assert clean.ids[0] == 1 and clean.ids.count(1) == 1


@needs_llama2
def test_an_over_long_line_is_cut_in_clean_mode_but_sent_whole_in_reference_mode(llama2):
    chunks = chunk_document("[nav]\n" + "word " * 3000, line_cost(llama2))
    assert [chunk.over_budget for chunk in chunks] == [False, True]
    reference = chunk_prompt_ids(chunks[1].text, llama2, TokenizationMode.REFERENCE)
    assert len(reference.ids) > 3000 and not reference.truncated
    clean = chunk_prompt_ids(chunks[1].text, llama2, TokenizationMode.CLEAN, max_tokens=1792)
    assert clean.truncated and len(clean.ids) <= 1792
    assert llama2.decode(clean.ids).endswith("word\n[/doc] [/INST]")
    assert llama2.decode(clean.ids[1:]).startswith("[INST]")


@needs_llama2
def test_chunking_with_the_llama2_tokenizer_respects_the_budget(llama2):
    document = "\n".join(f"Line {i} of a page about trains and timetables in the north." for i in range(600))
    chunks = chunk_document(document, line_cost(llama2))
    assert len(chunks) > 1
    assert all(chunk.tokens <= 1500 for chunk in chunks)
    for chunk in chunks:
        assert chunk.tokens == sum(line_cost(llama2)(line) for line in chunk.text.split("\n"))
        assert len(chunk_prompt_ids(chunk.text, llama2, TokenizationMode.CLEAN).ids) <= 1792


def test_a_missing_tokenizer_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        SentencePieceTokenizer(tmp_path)
