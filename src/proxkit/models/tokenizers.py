"""Tokenizers for prompts: SentencePiece for the Llama-2 refiners, any transformers tokenizer otherwise."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from proxkit.prompts import SentencePieceTokenizer, Tokenizer


class HFTokenizer:
    """A transformers tokenizer seen through the prompts' `Tokenizer` protocol (no special tokens added)."""

    adds_prefix_space = False

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        bos = tokenizer.bos_token_id
        self.bos_id = bos if bos is not None else tokenizer.eos_token_id
        self.eos_id = tokenizer.eos_token_id

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> HFTokenizer:
        return cls(auto_tokenizer(name_or_path))

    @property
    def hf_tokenizer(self):
        return self._tokenizer

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """The tokenizer of a model directory: its SentencePiece `tokenizer.model` when it has one (the exact
    legacy ids of the released ProX refiners), else its transformers tokenizer. Loaded once per process
    and directory (a run's doc stage, chunk stage and token counter share it; none changes it)."""
    return _tokenizer_of(str(model_dir))


@functools.lru_cache(maxsize=8)
def _tokenizer_of(directory: str) -> Tokenizer:
    path = Path(directory)
    if (path / "tokenizer.model").is_file():
        return SentencePieceTokenizer(path / "tokenizer.model")
    return HFTokenizer.from_pretrained(directory)


@functools.lru_cache(maxsize=8)
def auto_tokenizer(name_or_path: str):
    """A transformers tokenizer, loaded once per process and path (shared read-only by the prompt tokenizer
    and a tagger's backbone; loading SmolLM2's took 0.2 s, median of 5)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)
