"""The prompts of the released ProX refining models (PROX_SPEC §2): strings, line numbering, chunking and
token ids.

Two tokenization modes:
- `reference`: the ids the authors' pipeline produced — one BOS for the doc prompt, cut on the right at
  2000 tokens (which can lose `[/INST]`); two BOS for chunk prompts (vLLM added one to the literal `<s>`),
  never cut.
- `clean`: one BOS everywhere; an over-long prompt is made to fit by cutting the *document* (or chunk), so
  the prompt always ends with `[/INST]`, and the cut is flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Protocol

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
BOS = "<s>"
DOC_MAX_PROMPT_TOKENS = 2000  # the reference cut doc prompts here
CHUNK_TOKEN_BUDGET = 1500  # greedy line packing budget per chunk
MODEL_CONTEXT = 2048
WHOLE_PAGE = 2**62  # a chunk budget (and prompt length) no page reaches: one prompt per page
CHUNK_MAX_NEW_TOKENS = 256
DOC_MAX_NEW_TOKENS = 2000


class TokenizationMode(StrEnum):
    REFERENCE = "reference"
    CLEAN = "clean"

    @classmethod
    def for_mode(cls, mode: str) -> TokenizationMode:
        """The tokenization of a program mode: `reference` reproduces the authors' ids, `strict` is clean."""
        return cls.REFERENCE if mode == "reference" else cls.CLEAN


class Tokenizer(Protocol):
    """What prompts need from a tokenizer.

    `encode` turns plain text into ids with no special tokens, the way SentencePiece does (the first word
    gets its leading-space marker); `decode` is its inverse.
    """

    bos_id: int
    eos_id: int
    adds_prefix_space: bool  # encode() marks a space before the first word (SentencePiece's dummy prefix)

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class SentencePieceTokenizer:
    """A SentencePiece model file (the Llama-2 `tokenizer.model` of the released refiners).

    Encoding the text after a literal `<s>` with SentencePiece itself gives the legacy ids of the reference
    (`▁[` = 518), whatever transformers version is installed.
    """

    adds_prefix_space = True

    def __init__(self, model_file: str | Path) -> None:
        import sentencepiece

        path = Path(model_file)
        if path.is_dir():
            path = path / "tokenizer.model"
        if not path.is_file():
            raise FileNotFoundError(f"no SentencePiece model at {path}")
        self._model = sentencepiece.SentencePieceProcessor(model_file=str(path))
        self.bos_id = self._model.bos_id()
        self.eos_id = self._model.eos_id()

    def encode(self, text: str) -> list[int]:
        return self._model.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._model.decode(list(ids))

    @property
    def vocab_size(self) -> int:
        return self._model.get_piece_size()

    def piece(self, token: int) -> str:
        """The token as SentencePiece writes it (`▁` for a space, `<0x0A>` for a byte)."""
        return self._model.id_to_piece(token)


# --- strings --------------------------------------------------------------------------------------------


def chat_prompt(content: str) -> str:
    """The Llama-2 chat string with the short system prompt around `content`. The chat template strips
    the system block and content together, so the content loses its trailing whitespace only."""
    return f"{BOS}[INST] <<SYS>>\n{SYSTEM_PROMPT}\n<</SYS>>\n\n{content.rstrip()} [/INST]"


def doc_prompt(text: str) -> str:
    """The doc-stage prompt: the raw document, no line numbers."""
    return chat_prompt(text)


def wrap_chunk(chunk_text: str) -> str:
    """The chunk-stage content: numbered lines inside `[doc]` ... `[/doc]`."""
    return f"[doc]\n{chunk_text}\n[/doc]"


def chunk_prompt(chunk_text: str) -> str:
    """The chunk-stage prompt for one chunk of numbered lines."""
    return chat_prompt(wrap_chunk(chunk_text))


def number_line(index: int, line: str) -> str:
    """`[NNN]line`: the global line number, zero-padded to at least 3 digits, no space after `]`."""
    return f"[{index:03d}]{line}"


# --- chunking -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive lines `first_line`..`last_line` of a document, numbered, joined with newlines."""

    first_line: int
    last_line: int
    text: str
    tokens: int  # the summed line costs
    over_budget: bool = False  # a single line longer than the budget


def line_cost(tokenizer: Tokenizer) -> Callable[[str], int]:
    """The reference cost of a numbered line: its token count with the BOS."""
    return lambda numbered: len(tokenizer.encode(numbered)) + 1


def chunk_document(text: str, cost: Callable[[str], int], budget: int = CHUNK_TOKEN_BUDGET) -> list[Chunk]:
    """Pack the document's numbered lines greedily into chunks of at most `budget` tokens.

    A line that does not fit starts a new chunk; a line alone over the budget is a chunk by itself.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    chunks: list[Chunk] = []
    lines: list[str] = []
    first = tokens = 0
    for index, line in enumerate(text.split("\n")):
        numbered = number_line(index, line)
        line_tokens = cost(numbered)
        if lines and tokens + line_tokens > budget:
            chunks.append(Chunk(first, index - 1, "\n".join(lines), tokens))
            lines, tokens = [], 0
        if not lines:
            first = index
        if line_tokens > budget:
            chunks.append(Chunk(index, index, numbered, line_tokens, over_budget=True))
            continue
        lines.append(numbered)
        tokens += line_tokens
    if lines:
        chunks.append(Chunk(first, first + len(lines) - 1, "\n".join(lines), tokens))
    return chunks


# --- token ids ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptIds:
    """The token ids of one prompt, whether its content was cut to fit, and the token count of the whole
    content (the document or chunk, before any cut; ±1 where the template meets it)."""

    ids: list[int]
    truncated: bool = False
    content_tokens: int = 0


def doc_prompt_ids(
    text: str,
    tokenizer: Tokenizer,
    mode: TokenizationMode = TokenizationMode.CLEAN,
    max_tokens: int = DOC_MAX_PROMPT_TOKENS,
) -> PromptIds:
    """The doc-stage prompt as ids, at most `max_tokens` long."""
    if TokenizationMode(mode) is TokenizationMode.REFERENCE:
        ids = _encode_prompt(doc_prompt(text), tokenizer)
        content = len(ids) - _template_tokens(doc_prompt, tokenizer)
        return PromptIds(ids[:max_tokens], len(ids) > max_tokens, content)
    return _fit(text, doc_prompt, tokenizer, max_tokens)


def chunk_prompt_ids(
    chunk_text: str,
    tokenizer: Tokenizer,
    mode: TokenizationMode = TokenizationMode.CLEAN,
    max_tokens: int = MODEL_CONTEXT - CHUNK_MAX_NEW_TOKENS,
) -> PromptIds:
    """The chunk-stage prompt as ids. Reference: two BOS and never cut; clean: one BOS, cut to `max_tokens`."""
    if TokenizationMode(mode) is TokenizationMode.REFERENCE:
        ids = [tokenizer.bos_id, *_encode_prompt(chunk_prompt(chunk_text), tokenizer)]
        return PromptIds(ids, False, len(ids) - 1 - _template_tokens(chunk_prompt, tokenizer))
    return _fit(chunk_text, chunk_prompt, tokenizer, max_tokens)


def _encode_prompt(prompt: str, tokenizer: Tokenizer) -> list[int]:
    """A prompt string beginning with the literal `<s>`: BOS, then the rest as plain text."""
    assert prompt.startswith(BOS)
    return [tokenizer.bos_id, *tokenizer.encode(prompt[len(BOS) :])]


@lru_cache(maxsize=64)
def _template_tokens(render: Callable[[str], str], tokenizer: Tokenizer) -> int:
    return len(_encode_prompt(render(""), tokenizer))


def _fit(content: str, render: Callable[[str], str], tokenizer: Tokenizer, max_tokens: int) -> PromptIds:
    """Encode render(content); while too long, cut the content's tail by the overflow and encode again.

    The ids are always those of a real rendered string, so `[/INST]` and every wrapper stay intact.
    """
    ids = _encode_prompt(render(content), tokenizer)
    if len(ids) <= max_tokens:
        return PromptIds(ids, False, len(ids) - _template_tokens(render, tokenizer))
    content_ids = tokenizer.encode(content)
    keep = len(content_ids)
    while len(ids) > max_tokens and keep > 0:
        keep = max(0, keep - (len(ids) - max_tokens))
        ids = _encode_prompt(render(tokenizer.decode(content_ids[:keep])), tokenizer)
    if len(ids) > max_tokens:
        raise ValueError(f"the prompt template alone needs {len(ids)} tokens, more than max_tokens={max_tokens}")
    return PromptIds(ids, True, len(content_ids))
