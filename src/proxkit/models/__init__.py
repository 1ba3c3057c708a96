"""Refining models: one ProgramWriter interface, three backends (transformers, vLLM, OpenAI-compatible
endpoints) and a registry of model names. Heavy libraries are imported only by the backend in use."""

from proxkit.models.registry import BUNDLED, DEFAULT_MODELS, RELEASED, Backend, ModelSpec, UnknownModelError, resolve
from proxkit.models.writer import Generation, ProgramWriter, length_batches

__all__ = [
    "BUNDLED",
    "DEFAULT_MODELS",
    "RELEASED",
    "Backend",
    "Generation",
    "ModelSpec",
    "ProgramWriter",
    "UnknownModelError",
    "length_batches",
    "resolve",
]
