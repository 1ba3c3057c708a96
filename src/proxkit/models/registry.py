"""Model names → how to load them: the released ProX refiners (hub ids), local directories, bundled
refiners, and the backends that run them. A spec knows its kind (tagger, causal LM, remote endpoint) from
the moment it is resolved, and each kind has one loader. Modules that import torch or transformers are
imported where a spec loads, so `import proxkit.models` stays light."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from proxkit.errors import OptionError, ProxError
from proxkit.models.options import TAGGER_CONFIG, TAGGER_THRESHOLDS, is_tagger
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
# Base models available offline, by name.
BASE_MODELS = ("smollm2-135m",)
NEEDS_BASE_URL = "the openai backend needs the endpoint: --base-url http://host:port/v1"


class ModelKind(StrEnum):
    """What writes a spec's programs: a line tagger in process, a causal LM in process (transformers or
    vLLM), or a remote OpenAI-compatible endpoint."""

    TAGGER = "tagger"
    CAUSAL_LM = "causal_lm"
    REMOTE = "remote"


class UnknownModelError(ProxError, ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load a refining model in any process (picklable; nothing is loaded yet).

    name: what the user asked for; source: a local directory or a hub id; kind: what writes its programs
    (decided by `resolve`); tokenizer: where the prompt tokenizer is (defaults to source); options: keyword
    arguments of the backend's writer.
    """

    name: str
    stage: Stage
    source: str
    backend: Backend = Backend.TRANSFORMERS
    tokenizer: str | None = None
    options: dict = field(default_factory=dict)
    kind: ModelKind | None = None  # None: decided from the backend and the source (`kind_of`)

    def __post_init__(self) -> None:
        if self.kind is None:
            object.__setattr__(self, "kind", kind_of(self.source, Backend(self.backend)))

    def compute_dtype(self) -> str | None:
        """The dtype an in-process model computes in on this machine (`auto` resolved); None for a remote
        endpoint, whose dtype is the server's."""
        if self.kind is ModelKind.REMOTE:
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
        reference's 1500 and 2048, or for a tagger the chunk budget it was trained with (0: a whole page in
        one prompt) and no prompt limit (it reads any length in windows; blank lines cost no budget)."""
        from proxkit.prompts import CHUNK_TOKEN_BUDGET, MODEL_CONTEXT, WHOLE_PAGE

        if self.kind is ModelKind.TAGGER:
            return self.tagger_config().chunk_budget or WHOLE_PAGE, WHOLE_PAGE
        return CHUNK_TOKEN_BUDGET, MODEL_CONTEXT

    @property
    def tagger_directory(self) -> Path | None:
        """The directory of a tagger spec (local, bundled, or a hub tagger in the local cache), else None."""
        return Path(_local_directory(self.source)) if self.kind is ModelKind.TAGGER else None

    def tagger_digest(self) -> str | None:
        """A digest of a tagger's config and weights (they decide its programs, so they key the program
        cache: retrained heads or new `languages` are a new cache); None for other models."""
        if self.kind is not ModelKind.TAGGER:
            return None
        directory = self.tagger_directory
        digest = hashlib.sha1()
        for path in sorted([directory / TAGGER_CONFIG, *directory.glob("*.safetensors")]):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:16]

    def tagger_config(self):
        """The `TaggerConfig` of a tagger spec."""
        from proxkit.models.tagger import TaggerConfig

        return TaggerConfig.load(self.tagger_directory)

    @property
    def reads_content_only(self) -> bool:
        """Whether this model reads only a text's content lines (`proxkit.layout`): a tagger does, so its
        doc prompt is made of them and no layout spends the prompt's token budget."""
        return self.kind is ModelKind.TAGGER

    def load_tokenizer(self) -> Tokenizer:
        """The prompts' tokenizer (shared by every spec of the same directory: `load_tokenizer` caches it); a
        tagger reads prompts with its backbone's."""
        from proxkit.models.backbones import resolve_base
        from proxkit.models.tokenizers import load_tokenizer

        directory = _local_directory(self.tokenizer or self.source)
        if is_tagger(directory):
            from proxkit.models.tagger import TaggerConfig

            directory = resolve_base(TaggerConfig.load(Path(directory)).base)
        return load_tokenizer(directory)

    def load_writer(self, tokenizer: Tokenizer, rank: int = 0) -> ProgramWriter:
        """The writer of this spec's kind (and, for a causal LM, its backend)."""
        return _WRITER_LOADERS[self.kind](self, tokenizer, rank)

    def non_embedding_parameters(self) -> int | None:
        """N of the FLOPs formulas, read from the model's config without loading weights (None when it
        cannot be known here: a remote endpoint, a hub model that is not downloaded)."""
        if self.kind is ModelKind.REMOTE:
            return self.options.get("parameters")
        if self.kind is ModelKind.TAGGER:
            from proxkit.models.backbones import resolve_base
            from proxkit.models.tagger import TaggerHeads

            config = self.tagger_config()
            heads = sum(p.numel() for p in TaggerHeads.for_config(config).parameters())
            return _count_parameters(resolve_base(config.base), depth=config.depth) + heads
        try:
            return _count_parameters(_local_directory(self.source))
        except UnknownModelError:
            return None


def kind_of(source: str, backend: Backend) -> ModelKind:
    """A source's kind: remote behind the openai backend; a tagger when its directory (local, or a hub id
    already in the local cache) holds a tagger config; else a causal LM."""
    if backend is Backend.OPENAI:
        return ModelKind.REMOTE
    if Path(source).expanduser().is_dir():
        return ModelKind.TAGGER if is_tagger(source) else ModelKind.CAUSAL_LM
    cached = _cached_directory(source)
    return ModelKind.TAGGER if cached and is_tagger(cached) else ModelKind.CAUSAL_LM


def _load_remote(spec: ModelSpec, tokenizer: Tokenizer, rank: int) -> ProgramWriter:
    from proxkit.models.openai import OpenAIWriter

    options = dict(spec.options)
    base_url = options.pop("base_url", None)
    if not base_url:
        raise OptionError(NEEDS_BASE_URL)
    return OpenAIWriter(base_url, options.pop("served_model", spec.source), **options)


def _load_tagger(spec: ModelSpec, tokenizer: Tokenizer, rank: int) -> ProgramWriter:
    from proxkit.models.tagger import TaggerWriter

    dtype = spec.options.get("dtype") or "auto"
    return TaggerWriter(spec.tagger_directory, tokenizer, device=spec.device, dtype=dtype, **spec.tagger_thresholds)


def _load_causal_lm(spec: ModelSpec, tokenizer: Tokenizer, rank: int) -> ProgramWriter:
    if spec.backend is Backend.VLLM:
        from proxkit.models.vllm import VLLMWriter

        return VLLMWriter(spec.source, rank=rank, tokenizer=spec.tokenizer, **spec.options)
    from proxkit.models.hf import TransformersWriter

    return TransformersWriter(_local_directory(spec.source), tokenizer, **spec.options)


_WRITER_LOADERS = {ModelKind.REMOTE: _load_remote, ModelKind.TAGGER: _load_tagger, ModelKind.CAUSAL_LM: _load_causal_lm}


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
    if options.get("api_key") is not None:  # kept out of every log and settings file the run writes
        from proxkit.models.openai import masked

        options["api_key"] = masked(options["api_key"])
    thresholds = [option for option in TAGGER_THRESHOLDS if option in options]
    if thresholds and not (name in BUNDLED or is_tagger(name)):
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


def _cached_directory(source: str) -> str | None:
    """The local copy of a hub id when the hub cache already holds it (nothing is fetched), else None."""
    if source.count("/") != 1 or source.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(source, local_files_only=True)
    except Exception:  # not cached (or not a valid id): its kind cannot be read from its files
        return None
