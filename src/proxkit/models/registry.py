"""Model names → how to load them: the released ProX refiners (hub ids), local directories, bundled
refiners, and the backends that run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from proxkit.errors import OptionError, ProxError
from proxkit.models.writer import ProgramWriter
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
# Refiners shipped inside the package: name → (stage, directory under proxkit/refiners/).
BUNDLED: dict[str, tuple[Stage, str]] = {
    "proxkit/web-doc-tagger": (Stage.DOC, "web-doc-tagger"),
    "proxkit/web-chunk-tagger": (Stage.CHUNK, "web-chunk-tagger"),
}
BUNDLED_ROOT = Path(__file__).resolve().parents[1] / "refiners"
# The defaults of `prox refine`: the bundled refiners, which work offline on a CPU.
DEFAULT_MODELS: dict[Stage, str] = {Stage.DOC: "proxkit/web-doc-tagger", Stage.CHUNK: "proxkit/web-chunk-tagger"}
# Options of a tagger refiner's writer (`TaggerWriter`), which generative writers do not take.
TAGGER_THRESHOLDS = ("line_threshold", "doc_threshold")
# Base models available offline, by name.
BASE_MODELS = ("smollm2-135m",)
NEEDS_BASE_URL = "the openai backend needs the endpoint: --base-url http://host:port/v1"


def check_thresholds(holder: object) -> None:
    """Raise ValueError unless each tagger threshold `holder` sets (an attribute; None: unset) lies in (0, 1)."""
    for name in TAGGER_THRESHOLDS:
        value = getattr(holder, name, None)
        if value is not None and not 0.0 < value < 1.0:
            raise OptionError(f"{name} must lie within (0, 1), got {value}")


class UnknownModelError(ProxError, ValueError):
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

    def compute_dtype(self) -> str | None:
        """The dtype an in-process model computes in on this machine (`auto` resolved); None for a remote
        endpoint, whose dtype is the server's."""
        if Backend(self.backend) is Backend.OPENAI:
            return None
        from proxkit.models.writer import dtype_name

        return dtype_name(self.options.get("dtype") or "auto", self.device)

    @property
    def device(self) -> str:
        """Where an in-process model runs: the `device` option, else the GPU when there is one."""
        import torch

        return self.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def tagger_thresholds(self) -> dict[str, float]:
        """The tagger cut-offs this spec overrides (they decide its programs, so they key the program cache)."""
        return {name: value for name, value in self.options.items() if name in TAGGER_THRESHOLDS}

    @property
    def chunk_limits(self) -> tuple[int, int]:
        """(tokens of a page per chunk, tokens per prompt) when this model writes chunk programs: the
        reference's 1500 and 2048, or for a tagger directory the chunk budget it was trained with (0: a whole
        page in one prompt, without a limit: the tagger reads any length in windows)."""
        from proxkit.models.tagger import TaggerConfig
        from proxkit.prompts import CHUNK_TOKEN_BUDGET, MODEL_CONTEXT, WHOLE_PAGE

        if (directory := self.tagger_directory) is not None:
            budget = TaggerConfig.load(directory).chunk_budget
            return (budget, MODEL_CONTEXT) if budget else (WHOLE_PAGE, WHOLE_PAGE)
        return CHUNK_TOKEN_BUDGET, MODEL_CONTEXT

    @property
    def tagger_directory(self) -> Path | None:
        """The tagger directory this spec runs in process (taggers are local or bundled directories), or None
        when it is not a tagger."""
        from proxkit.models.tagger import is_tagger

        directory = Path(self.source).expanduser()
        return directory if self.backend is not Backend.OPENAI and is_tagger(directory) else None

    @property
    def reads_content_only(self) -> bool:
        """Whether this model reads only a text's content lines (`proxkit.layout`): a tagger does, so its
        doc prompt is made of them and no layout spends the prompt's token budget."""
        return self.tagger_directory is not None

    def load_tokenizer(self) -> Tokenizer:
        """The prompts' tokenizer (shared by every spec of the same directory: `load_tokenizer` caches it)."""
        from proxkit.models.backbones import resolve_base
        from proxkit.models.tagger import TaggerConfig, is_tagger
        from proxkit.models.tokenizers import load_tokenizer

        directory = _local_directory(self.tokenizer or self.source)
        if is_tagger(directory):  # a tagger reads prompts with its backbone's tokenizer
            directory = resolve_base(TaggerConfig.load(Path(directory)).base)
        return load_tokenizer(directory)

    def load_writer(self, tokenizer: Tokenizer, rank: int = 0) -> ProgramWriter:
        if self.backend is Backend.OPENAI:
            from proxkit.models.openai import OpenAIWriter

            options = dict(self.options)
            base_url = options.pop("base_url", None)
            if not base_url:
                raise OptionError(NEEDS_BASE_URL)
            return OpenAIWriter(base_url, options.pop("served_model", self.source), **options)
        if self.backend is Backend.VLLM:
            from proxkit.models.vllm import VLLMWriter

            return VLLMWriter(self.source, rank=rank, tokenizer=self.tokenizer, **self.options)
        from proxkit.models.tagger import TaggerWriter, is_tagger

        directory = _local_directory(self.source)
        if is_tagger(directory):
            dtype = self.options.get("dtype") or "auto"
            return TaggerWriter(directory, tokenizer, device=self.device, dtype=dtype, **self.tagger_thresholds)
        from proxkit.models.hf import TransformersWriter

        return TransformersWriter(directory, tokenizer, **self.options)

    def non_embedding_parameters(self) -> int | None:
        """N of the FLOPs formulas, read from the model's config without loading weights (None when it
        cannot be known here: a remote endpoint, a hub model that is not downloaded)."""
        from proxkit.models.backbones import resolve_base
        from proxkit.models.tagger import TaggerConfig, TaggerHeads, is_tagger

        if self.backend is Backend.OPENAI:
            return self.options.get("parameters")
        try:
            directory = _local_directory(self.source)
        except UnknownModelError:
            return None
        if not is_tagger(directory):
            return _count_parameters(directory)
        config = TaggerConfig.load(Path(directory))
        heads = sum(p.numel() for p in TaggerHeads.for_config(config).parameters())
        return _count_parameters(resolve_base(config.base), depth=config.depth) + heads


def _count_parameters(directory: str, depth: int | None = None) -> int:
    """Non-embedding parameters of a causal LM (its first `depth` layers), built on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from proxkit.flops import count_non_embedding_parameters

    config = AutoConfig.from_pretrained(directory)
    if depth is not None:
        config.num_hidden_layers = depth
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return count_non_embedding_parameters(model)


def resolve(name: str, stage: Stage, backend: Backend | str = Backend.TRANSFORMERS, **options) -> ModelSpec:
    """The spec of a model name for a stage. Raises UnknownModelError listing the valid names."""
    backend = Backend(backend)
    tokenizer = options.pop("tokenizer", None)
    thresholds = [option for option in TAGGER_THRESHOLDS if option in options]
    if thresholds and not (name in BUNDLED or is_tagger_directory(name)):
        raise UnknownModelError(f"{thresholds[0]} applies to tagger refiners only; {name} is not one")
    if name in BUNDLED:
        bundled_stage, directory = BUNDLED[name]
        _check_stage(name, bundled_stage, stage)
        if backend is not Backend.TRANSFORMERS:
            raise UnknownModelError(f"{name} runs in process only: use --backend transformers")
        if not (BUNDLED_ROOT / directory / "tagger.json").is_file():
            raise UnknownModelError(f"{name} is missing from this installation ({BUNDLED_ROOT / directory})")
        return ModelSpec(name, stage, str(BUNDLED_ROOT / directory), backend, tokenizer, options)
    if name in BASE_MODELS:
        from proxkit.models.backbones import smollm2_135m

        return ModelSpec(name, stage, str(smollm2_135m()), backend, tokenizer, options)
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


def is_tagger_directory(name: str) -> bool:
    from proxkit.models.tagger import is_tagger

    return is_tagger(Path(name).expanduser())


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
