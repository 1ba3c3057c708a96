"""Shared fixtures: where ../shared is, and tiny random refining models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def tiny_refiner(tmp_path_factory) -> Path:
    """A model directory with a random 2-layer Llama and its own SentencePiece tokenizer."""
    from tiny_models import build_tiny_refiner

    return build_tiny_refiner(tmp_path_factory.mktemp("tiny-refiner"))


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """A random 4-layer Llama with a byte-level BPE tokenizer (transformers format), hidden size 32."""
    from tiny_models import build_tiny_backbone

    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-backbone"))


@pytest.fixture
def built_backbones(monkeypatch) -> list[tuple[str, str]]:
    """The (device, dtype) of every tagger backbone built while the test runs."""
    from proxkit.models import tagger

    built, build = [], tagger.Backbone.__init__

    def recording(self, config, device="cpu", dtype="float32"):
        build(self, config, device, dtype)
        built.append((self.device, self.dtype))

    monkeypatch.setattr(tagger.Backbone, "__init__", recording)
    return built
