"""What `prox experiment` runs, without torch (so the CLI reads its defaults): the arms, the decoder's size
presets (`ModelShape`), the training settings and the experiment's config."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelShape:
    """The decoder's size; the presets are named by `ModelShape.preset`."""

    hidden: int = 192
    layers: int = 4
    heads: int = 4
    intermediate: int = 512
    context: int = 256

    @classmethod
    def preset(cls, name: str) -> ModelShape:
        presets = {
            "tiny": cls(hidden=128, layers=2, heads=4, intermediate=344, context=256),  # tests, smoke runs
            "small": cls(),  # the CPU default: ~2.4M parameters outside the embeddings
            "base": cls(hidden=512, layers=8, heads=8, intermediate=1376, context=1024),  # a GPU
            "gpt2": cls(hidden=768, layers=12, heads=12, intermediate=2048, context=1024),  # ~125M, GPU
        }
        try:
            return presets[name]
        except KeyError:
            raise ValueError(f"unknown model size {name!r}; choose from {sorted(presets)}") from None


@dataclass(frozen=True)
class TrainSettings:
    """tokens: the budget each arm trains on; batch: blocks per step; lr: peak (linear warm-up over
    `warmup` of the steps, cosine decay to a tenth)."""

    tokens: int = 120_000
    batch: int = 4
    lr: float = 2e-3
    warmup: float = 0.05
    weight_decay: float = 0.1
    device: str = "cpu"

    def steps(self, context: int) -> int:
        return max(1, self.tokens // (self.batch * context))


ARMS = ("raw", "rules", "prox")


@dataclass
class ExperimentConfig:
    """pool: raw documents (JSONL/Parquet files or folders); benchmarks: the folder of evaluation data
    (layout of ../shared/data/eval_benchmarks); tokens: training budget per model; eval_limit: items per
    zero-shot task (0: all); wikitext_pages: WikiText-2 test articles for perplexity (0: all 62);
    refine: extra keyword arguments of RefineConfig (models, backend, mode ...)."""

    pool: list[str]
    output: str
    benchmarks: str
    seeds: int = 3
    tokens: int = 120_000
    model_size: str = "small"
    vocab_size: int = 8192
    batch: int = 4
    lr: float = 2e-3
    eval_limit: int = 50
    wikitext_pages: int = 10
    limit: int = -1
    text_key: str = "text"
    id_key: str = "id"
    device: str = "cpu"
    refine: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = ModelShape.preset(self.model_size)
        for name in ("seeds", "tokens", "vocab_size", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not Path(self.benchmarks).is_dir():
            raise FileNotFoundError(f"benchmark folder {self.benchmarks} not found (see --benchmarks)")
        if self.tokens < self.batch * self.shape.context:
            raise ValueError(f"tokens must cover one batch ({self.batch} x {self.shape.context})")

    def fingerprint(self) -> str:
        """Names the training and evaluation settings: runs made under other settings are not reused."""
        import hashlib

        fields = ("tokens", "model_size", "vocab_size", "batch", "lr", "eval_limit", "wikitext_pages")
        settings = json.dumps({name: getattr(self, name) for name in fields}, sort_keys=True)
        return hashlib.sha1(settings.encode()).hexdigest()[:10]

    @property
    def settings(self) -> TrainSettings:
        return TrainSettings(tokens=self.tokens, batch=self.batch, lr=self.lr, device=self.device)
