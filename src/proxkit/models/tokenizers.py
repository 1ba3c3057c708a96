"""Tokenizers for prompts: SentencePiece for the Llama-2 refiners, any transformers tokenizer otherwise."""

from __future__ import annotations

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
    def from_pretrained(cls, name_or_path: str, **kwargs) -> HFTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(name_or_path, **kwargs))

    @property
    def hf_tokenizer(self):
        return self._tokenizer

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)


def load_tokenizer(model_dir: str | Path, **kwargs) -> Tokenizer:
    """The tokenizer of a model directory: its SentencePiece `tokenizer.model` when it has one (the exact
    legacy ids of the released ProX refiners), else its transformers tokenizer."""
    path = Path(model_dir)
    if (path / "tokenizer.model").is_file():
        return SentencePieceTokenizer(path / "tokenizer.model")
    return HFTokenizer.from_pretrained(str(model_dir), **kwargs)
