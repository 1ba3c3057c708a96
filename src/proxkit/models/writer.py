"""The one interface every model backend implements: token-id prompts in, program text out."""

from __future__ import annotations

import functools
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Generation:
    """What a model wrote for one prompt: the program text and its token count, or the error that stopped it;
    `score`: the writer's probability that the document should be dropped, for a doc program, when it has one;
    `note`: set when the program came from a fallback rather than the model (what and why)."""

    text: str
    new_tokens: int = 0
    error: str | None = None
    score: float | None = None
    note: str | None = None


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


def cpu_flags() -> set[str]:
    """The feature flags of this CPU (empty where /proc/cpuinfo cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            return set(next((line for line in file if line.startswith("flags")), "").split()[2:])
    except OSError:
        return set()


def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware tiles (Intel AMX)."""
    return "amx_bf16" in cpu_flags()


BF16_MIN_SPEEDUP = 1.2  # bfloat16 is chosen on a CPU only when its matrix products are this much faster


@functools.lru_cache(maxsize=1)
def cpu_bfloat16_pays() -> bool:
    """Whether bfloat16 runs faster than float32 on this CPU. CPUs differ (with AMX it is several times
    faster; with AVX-512 BF16 alone it was faster on some and slower on others), so it is measured, not
    assumed: matrix products of a small LM's shapes, side by side, once per machine, remembered in the
    proxkit cache. A CPU without bfloat16 instructions is float32 without measuring."""
    flags = cpu_flags()
    if not flags & {"amx_bf16", "avx512_bf16"}:
        return False
    import torch

    from proxkit.models.backbones import cache_root

    key = f"{_cpu_model()}|{'amx' if 'amx_bf16' in flags else 'avx512_bf16'}|torch {torch.__version__}"
    path = cache_root() / "cpu_bfloat16.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = round(_matmul_seconds(torch.float32) / _matmul_seconds(torch.bfloat16), 3)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_text(json.dumps(known, indent=1))
        partial.replace(path)
    return known[key] >= BF16_MIN_SPEEDUP


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            line = next((line for line in file if line.startswith("model name")), "")
    except OSError:
        return "unknown"
    return line.split(":", 1)[-1].strip() or "unknown"


def _matmul_seconds(dtype) -> float:
    """Median seconds of ten [1024, 576] x [576, 1536] products (SmolLM2-135M's MLP shape)."""
    import statistics
    import time

    import torch

    a, b = torch.randn(1024, 576).to(dtype), torch.randn(576, 1536).to(dtype)
    a @ b
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def auto_dtype(device: str):
    """The inference dtype `auto` stands for: bfloat16 on a GPU that supports it or a CPU where it was
    measured faster (`cpu_bfloat16_pays`), float32 otherwise."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device == "cpu" and cpu_bfloat16_pays() else torch.float32


def dtype_name(dtype: str, device: str) -> str:
    """A dtype option as the name of the dtype it computes in on `device` ("auto" resolved by `auto_dtype`)."""
    return str(auto_dtype(device)).removeprefix("torch.") if dtype == "auto" else dtype


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
