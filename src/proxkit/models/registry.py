"""Model names → how to load them: the released ProX refiners (hub ids), local directories, bundled
refiners, and the backends that run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from proxkit.models.base import ProgramWriter
from proxkit.program import Stage
from proxkit.prompts import Tokenizer


class Backend(StrEnum):
    TRANSFORMERS = "transformers"
    VLLM = "vllm"
    OPENAI = "openai"


# The refining models the ProX authors released (PROX_SPEC §4): Llama architecture, Llama-2 tokenizer.
RELEASED: dict[str, Stage] = {
    "gair-prox/web-doc-refining-lm": Stage.DOC,
    "gair-prox/web-chunk-refining-lm": Stage.CHUNK,
    "gair-prox/math-doc-refining-lm": Stage.DOC,
    "gair-prox/math-chunk-refining-lm": Stage.CHUNK,
}
# Refiners shipped inside the package (name → directory under proxkit/refiners/), once trained.
BUNDLED: dict[str, tuple[Stage, str]] = {}
DEFAULT_MODELS: dict[Stage, str] = {
    Stage.DOC: "gair-prox/web-doc-refining-lm",
    Stage.CHUNK: "gair-prox/web-chunk-refining-lm",
}


class UnknownModelError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load a refining model in any process (picklable; nothing is loaded yet).

    name: what the user asked for; source: a local directory or a hub id; tokenizer: where the prompt
    tokenizer is (defaults to source); options: keyword arguments of the backend's writer.
    """

    name: str
    stage: Stage
    source: str
    backend: Backend = Backend.TRANSFORMERS
    tokenizer: str | None = None
    options: dict = field(default_factory=dict)

    def load_tokenizer(self) -> Tokenizer:
        from proxkit.models.tokenizers import load_tokenizer

        return load_tokenizer(_local_directory(self.tokenizer or self.source))

    def load_writer(self, tokenizer: Tokenizer, rank: int = 0) -> ProgramWriter:
        if self.backend is Backend.OPENAI:
            from proxkit.models.openai import OpenAIWriter

            options = dict(self.options)
            base_url = options.pop("base_url", None)
            if not base_url:
                raise ValueError("the openai backend needs a base URL (--base-url http://host:port/v1)")
            return OpenAIWriter(base_url, options.pop("served_model", self.source), **options)
        if self.backend is Backend.VLLM:
            from proxkit.models.vllm import VLLMWriter

            return VLLMWriter(self.source, rank=rank, tokenizer=self.tokenizer, **self.options)
        from proxkit.models.hf import TransformersWriter

        return TransformersWriter(_local_directory(self.source), tokenizer, **self.options)


def resolve(name: str, stage: Stage, backend: Backend | str = Backend.TRANSFORMERS, **options) -> ModelSpec:
    """The spec of a model name for a stage. Raises UnknownModelError listing the valid names."""
    backend = Backend(backend)
    tokenizer = options.pop("tokenizer", None)
    if name in BUNDLED:
        bundled_stage, directory = BUNDLED[name]
        _check_stage(name, bundled_stage, stage)
        source = str(Path(__file__).resolve().parents[1] / "refiners" / directory)
        return ModelSpec(name, stage, source, backend, tokenizer, options)
    if Path(name).expanduser().is_dir():
        return ModelSpec(name, stage, str(Path(name).expanduser().resolve()), backend, tokenizer, options)
    if name in RELEASED:
        _check_stage(name, RELEASED[name], stage)
        return ModelSpec(name, stage, name, backend, tokenizer, options)
    if backend is Backend.OPENAI and tokenizer:  # a served model name the endpoint knows
        return ModelSpec(name, stage, name, backend, tokenizer, options)
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.startswith("gair-prox/"):
        return ModelSpec(name, stage, name, backend, tokenizer, options)  # any other hub id
    known = ", ".join([*BUNDLED, *RELEASED])
    raise UnknownModelError(f"unknown model {name!r}: not a directory, nor one of {known}, nor a hub id (org/name)")


def _check_stage(name: str, expected: Stage, stage: Stage) -> None:
    if expected is not stage:
        raise UnknownModelError(f"{name} is a {expected}-stage refiner; it cannot be the {stage}-stage model")


def _local_directory(source: str) -> str:
    """A local directory for a source, fetching a hub id into the local cache (or reading it from there)."""
    if Path(source).expanduser().is_dir():
        return str(Path(source).expanduser())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(source)
    except Exception as error:
        raise UnknownModelError(
            f"cannot fetch {source!r} from the Hugging Face hub ({type(error).__name__}: {error}). "
            "Download it where the hub is reachable (huggingface-cli download) and pass the local directory."
        ) from None
