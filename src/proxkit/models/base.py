"""The one interface every model backend implements: token-id prompts in, program text out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Generation:
    """What a model wrote for one prompt: the program text and its token count, or the error that stopped it;
    `score`: the writer's probability that the document should be dropped, for a doc program, when it has one."""

    text: str
    new_tokens: int = 0
    error: str | None = None
    score: float | None = None


class ProgramWriter(ABC):
    """A refining model behind some engine. Prompts are token ids so the exact ids of PROX_SPEC §2 reach it."""

    @abstractmethod
    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, grammar: str | None = None
    ) -> list[Generation]:
        """Greedy continuations of every prompt, in the order given, each stopped at the end of the program.
        With `grammar` (EBNF, see `program.grammar`), engines that can constrain decoding write only text
        of that grammar; the others ignore it."""

    def choose(self, prompts: Sequence[Sequence[int]], options: Sequence[str], max_new_tokens: int) -> list[Generation]:
        """For each prompt, the option greedy decoding writes. Engines that can read the decision off one
        forward pass override this; the default decodes freely (and may write something else)."""
        return self.generate(prompts, max_new_tokens)

    def decode_undecided(
        self, prompts: Sequence[Sequence[int]], results: list[Generation | None], max_new_tokens: int
    ) -> list[Generation]:
        """`results` with each prompt left undecided (None) by a `choose` decoded freely."""
        undecided = [index for index, result in enumerate(results) if result is None]
        if undecided:
            generations = self.generate([prompts[i] for i in undecided], max_new_tokens)
            for index, generation in zip(undecided, generations, strict=True):
                results[index] = generation
        return results  # type: ignore[return-value]

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the engine's resources."""


def begins_option(option: str, piece: str) -> bool:
    """Whether a token's text can begin `option`: a non-empty prefix of it, after at most one space."""
    text = piece.removeprefix(" ")
    return bool(text) and option.startswith(text)


def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware tiles (Intel AMX). AVX-512 BF16 alone does
    not pay: on such a CPU, SmolLM2-135M ran 1.55x slower in bfloat16 than in float32 for a 2048-token
    pass and 1.03x slower generating (throwaway measurements, 2026-11-24, side by side)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = next((line for line in file if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags


def auto_dtype(device: str):
    """The inference dtype `auto` stands for: bfloat16 on a GPU that supports it or a CPU with AMX,
    float32 otherwise."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device == "cpu" and cpu_has_bf16_matrix_units() else torch.float32


def length_batches(lengths: Sequence[int], max_batch: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (shortest first): at most `max_batch` prompts and
    `max_tokens` padded tokens per batch, a single prompt over `max_tokens` alone."""
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batch and (len(batch) >= max_batch or (len(batch) + 1) * lengths[index] > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
