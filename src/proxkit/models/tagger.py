"""A program writer that classifies instead of decoding.

The backbone of a causal LM (its first `depth` layers) reads the numbered content lines of a chunk (blank
lines and whitespace do not reach it: `proxkit.layout`, so a layout never changes a decision); a small head
reads the hidden state at each line's last token (the newline after it) and decides keep or remove, with
a 1-D convolution over neighbouring lines so a line is judged with its context (optionally also an
attention layer or a GRU over all the lines, and surface features of the line's text: `line_surface`); a
document head pools the line states and decides keep or drop. The decisions are rendered as the same
program text as the generative refiners (`remove_lines` / `keep_chunk()` / `drop_doc()` / `keep_doc()`),
so the rest of the pipeline does not know the difference. A chunk costs one forward pass and no decoding.

A tagger directory holds `tagger.json` (TaggerConfig) and `heads.safetensors`; the backbone is named by
`base` (a directory, or `smollm2-135m` for the offline SmolLM2-135M-Instruct).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from proxkit.inline_noise import normalize_calls, piece_calls, with_normalize
from proxkit.languages import foreign_language
from proxkit.layout import ContentLines, WordPieces, content_lines, content_text, read_as_text, word_pieces
from proxkit.models.backbones import resolve_base
from proxkit.models.doc_statistics import DOCUMENT_STATISTICS, document_statistics
from proxkit.models.options import TAGGER_CONFIG, check_thresholds
from proxkit.models.tokenizers import auto_tokenizer
from proxkit.models.word_head import WordHead
from proxkit.models.writer import Generation, ProgramWriter, dtype_name
from proxkit.program import DropDoc, KeepChunk, KeepDoc, Normalize, Program
from proxkit.prompts import CHUNK_TOKEN_BUDGET, Tokenizer, doc_prompt_ids, number_line
from proxkit.rules import TERMINAL_PUNCTUATION, c4_line_rule

HEADS_FILE = "heads.safetensors"
FEATURES_VERSION = 1  # bump when `line_surface` or `document_statistics` compute anything differently
_NUMBERED = re.compile(r"\[(\d{3,})\](.*)")


class DepthError(ValueError):
    """A tagger depth the base model does not have."""


class LayersError(ValueError):
    """Hidden-state layers outside the depth a tagger runs."""


@dataclass
class TaggerConfig:
    """base: backbone model (directory or `smollm2-135m`); depth: transformer layers run; layers: the
    hidden-state layers read and concatenated (indices into the `depth + 1` states); width: head size;
    line_threshold / doc_threshold: remove a line / drop a document when its probability is at least this;
    max_line_tokens: tokens read per line; max_tokens: tokens per forward pass; surface: the heads also read
    `line_surface` of each line's text; attention: the line head also attends over all lines of a chunk;
    recurrent: the line head also reads a bidirectional GRU run over the lines of a chunk; chunk_budget: the
    tokens of a page per chunk prompt when this tagger refines, as it was trained (`prox train tagger
    --chunk-budget`; 0: a whole page per prompt); languages: the languages (`proxkit.languages` codes) where
    the line head was validated — a chunk in another language gets the C4 line rule's program instead,
    and says so (None: the head everywhere); doc_languages: the languages the doc head was fitted in — a
    document in another language is kept unjudged, and says so (None: as `languages`);
    word_threshold: with a word head (`proxkit.models.word_head`, trained by `prox train word-head`), a word
    of a kept line is noise when its probability is at least this, and the noise becomes `normalize` calls
    (`proxkit.inline_noise`; None: no word head, line removals only); doc_statistics: the doc probe also
    reads `document_statistics` of the text of the lines it pools; doc_piece_words: the backbone reads a
    document's lines cut into pieces of at most this many words for the doc head (`doc_reading`; None: each
    line whole, read by its first `max_line_tokens` tokens); doc_pieces_above: with `doc_piece_words`, only
    lines longer than this many words are cut (None: every line longer than `doc_piece_words`);
    plain_markup: the backbone, `line_surface` and the doc statistics read Markdown as the text it marks up
    (`layout.read_as_text`, judged per chunk and per document: links as their text, no images or emphasis
    marks…), and a local run's doc prompt holds that text (`writing.doc_prompts`); the program and a word
    head's `normalize` calls are written for the lines as they are; features_version: the `FEATURES_VERSION`
    of the text features the heads were trained on (a tagger trained on other ones does not load)."""

    base: str
    depth: int = 4
    layers: tuple[int, ...] = (2, 4)
    width: int = 256
    line_threshold: float = 0.5
    doc_threshold: float = 0.5
    max_line_tokens: int = 32
    max_tokens: int = 2048
    hidden_size: int = 576
    surface: bool = False
    attention: bool = False
    recurrent: bool = False
    chunk_budget: int = CHUNK_TOKEN_BUDGET
    languages: tuple[str, ...] | None = None
    doc_languages: tuple[str, ...] | None = None
    word_threshold: float | None = None
    doc_statistics: bool = False
    doc_piece_words: int | None = None
    doc_pieces_above: int | None = None
    plain_markup: bool = False
    features_version: int = FEATURES_VERSION
    metrics: dict = field(default_factory=dict)  # validation numbers recorded at training time

    def __post_init__(self) -> None:
        self.layers = tuple(self.layers)
        self.languages = tuple(self.languages) if self.languages is not None else None
        self.doc_languages = tuple(self.doc_languages) if self.doc_languages is not None else None
        if not all(0 <= layer <= self.depth for layer in self.layers):
            raise LayersError(f"layers {self.layers} must lie within 0..depth={self.depth}")
        if self.line_threshold is None or self.doc_threshold is None:
            raise ValueError("a tagger needs a line_threshold and a doc_threshold")
        check_thresholds(self)
        if (self.attention and self.width % 4) or (self.recurrent and self.width % 2):
            raise ValueError(f"attention needs a width divisible by 4, a recurrent head an even one, not {self.width}")

    @classmethod
    def for_base(cls, base: str, depth: int = 4, layers: Sequence[int] | None = None, **settings) -> TaggerConfig:
        """A config reading `layers` of the first `depth` layers of `base` (default: the middle and the last),
        its hidden size looked up."""
        from transformers import AutoConfig

        base_config = AutoConfig.from_pretrained(resolve_base(base))
        if not 1 <= depth <= base_config.num_hidden_layers:
            raise DepthError(f"depth {depth} must lie within 1..{base_config.num_hidden_layers} (the layers of {base})")
        layers = tuple(layers) if layers else (depth // 2, depth)
        return cls(base=base, depth=depth, layers=layers, hidden_size=base_config.hidden_size, **settings)

    @property
    def features(self) -> int:
        """Columns of the backbone's line states."""
        return self.hidden_size * len(self.layers)

    def chunk_reading(self, lines: Sequence[str]) -> WordPieces:
        """How the backbone reads a chunk's content lines: each whole, as `plain_markup` says."""
        return WordPieces.whole(read_as_text(lines) if self.plain_markup else lines)

    def doc_reading(self, lines: Sequence[str]) -> WordPieces:
        """How the backbone reads a document's lines for the doc head: whole, or cut into pieces
        (`doc_piece_words`), as `plain_markup` says. The pieces are only its reading: the text's statistics
        are of the lines."""
        read = self.chunk_reading(lines).pieces
        if not self.doc_piece_words:
            return WordPieces.whole(read)
        return word_pieces(read, self.doc_piece_words, self.doc_pieces_above)

    def head_inputs(self, states: torch.Tensor, lines: Sequence[str]) -> torch.Tensor:
        """What the heads read of these lines: their backbone states, with `line_surface` appended when used."""
        if not self.surface:
            return states
        return torch.cat([states, line_surface(lines[: len(states)])], dim=-1)

    def save(self, directory: Path) -> None:
        (directory / TAGGER_CONFIG).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> TaggerConfig:
        """The config in `directory`; ValueError when its heads read text features this proxkit computes
        differently (`FEATURES_VERSION`)."""
        path = Path(directory) / TAGGER_CONFIG
        config = cls(**{"features_version": 1} | json.loads(path.read_text()))  # 1: written before the field
        if (config.surface or config.doc_statistics) and config.features_version != FEATURES_VERSION:
            raise ValueError(
                f"{path}: heads trained on text features version {config.features_version}, this proxkit computes "
                f"version {FEATURES_VERSION}: retrain them (`prox train tagger`, or `prox train doc-probe`)"
            )
        return config


C4_FALLBACK = "c4_line_rule"  # what a chunk outside the tagger's languages gets, named in its note
UNJUDGED = "kept_unjudged"  # the note of a document outside the tagger's languages (kept)
SURFACE_FEATURES = 10
_SEPARATORS = ("|", "\u00bb", ">>", "\u00a9", "\u2022")  # |, », >>, ©, •: menus, breadcrumbs, footers


def line_surface(lines: Sequence[str]) -> torch.Tensor:
    """[lines, SURFACE_FEATURES]: what a line's text shows at a glance and a state read at its last token
    holds only vaguely — its length in words and characters, whether it passes the C4 line rule or ends in
    terminal punctuation, its shares of letters, digits and capitals, a leading capital, menu or footer
    separators — and its position among `lines` (0 first, 1 last: headers come first, footers last). A
    writer reads a page one chunk at a time, so the position is within the chunk; `prox train tagger`
    computes it the same way (its `--chunk-budget`), except with `--chunk-budget 0`, which reads whole pages."""
    rows = []
    last = max(len(lines) - 1, 1)
    for index, (line, c4_keeps) in enumerate(zip(lines, c4_line_rule(lines), strict=True)):
        text = line.strip()
        words = text.split()
        chars = max(len(text), 1)
        rows.append(
            [
                math.log1p(len(words)) / 3,
                math.log1p(len(text)) / 5,
                float(c4_keeps),
                float(text.endswith(TERMINAL_PUNCTUATION)),
                sum(c.isalpha() for c in text) / chars,
                sum(c.isdigit() for c in text) / chars,
                sum(c.isupper() for c in text) / chars,
                float(text[:1].isupper()),
                float(any(separator in text for separator in _SEPARATORS)),
                index / last,
            ]
        )
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), SURFACE_FEATURES)


class DocProbe(nn.Module):
    """Document head: a logistic regression on the standardized mean of a document's line states, each
    line weighted by the line head's probability that it is content — so the probe judges the quality of
    what would be kept, not how much boilerplate surrounds it — and, when the tagger has `doc_statistics`,
    on `document_statistics` of the same lines (the columns after the states; `TaggerHeads.pooled` builds
    the input). A linear probe, because a couple of hundred labelled documents is all there is to fit it."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))
        self.linear = nn.Linear(features, 1)

    @staticmethod
    def pool(lines: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """The content-weighted mean of `lines` ([n_lines, features]; `content`: [n_lines] weights)."""
        if not len(lines):
            return torch.zeros(lines.shape[-1])
        return (content[:, None] * lines).sum(dim=0) / content.sum().clamp_min(1e-6)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Drop logit(s) of what `TaggerHeads.pooled` gives ([features] or [documents, features])."""
        return self.linear((pooled - self.center) / self.scale).squeeze(-1)


class TaggerHeads(nn.Module):
    """Line head: project (the line state, plus its surface features when `surface` columns follow it),
    mix each line with its neighbours (conv over lines), optionally let every line attend to all the others
    or run a GRU over them both ways (a comment section or a list of links is told by what surrounds it,
    further than the conv sees), score. Doc head: a `DocProbe` over the lines the line head would keep."""

    def __init__(
        self,
        features: int,
        width: int = 256,
        surface_columns: int = 0,
        attention: bool = False,
        recurrent: bool = False,
        doc_statistics: bool = False,
        plain_markup: bool = False,
    ) -> None:
        """features: columns of the line states; surface_columns: columns of surface features after them; attention:
        one transformer encoder layer (4 heads) over the lines; recurrent: a bidirectional GRU over them;
        doc_statistics: the doc probe also reads `document_statistics` of the lines' text (with `plain_markup`,
        of their Markdown read as text, `layout.read_as_text`)."""
        super().__init__()
        self.features = features
        self.doc_statistics = doc_statistics
        self.plain_markup = plain_markup
        self.project = nn.Sequential(nn.LayerNorm(features), nn.Linear(features, width), nn.GELU())
        self.surface = nn.Sequential(nn.Linear(surface_columns, width), nn.GELU()) if surface_columns else None
        self.context = nn.Conv1d(width, width, kernel_size=5, padding=2)
        self.attention = (
            nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.1, batch_first=True) if attention else None
        )
        self.recurrent = nn.GRU(width, width // 2, batch_first=True, bidirectional=True) if recurrent else None
        self.line = nn.Linear((2 + attention + recurrent) * width, 1)
        self.doc = DocProbe(features + surface_columns + (DOCUMENT_STATISTICS if doc_statistics else 0))

    @classmethod
    def for_config(cls, config: TaggerConfig) -> TaggerHeads:
        surface_columns = SURFACE_FEATURES if config.surface else 0
        return cls(
            config.features,
            config.width,
            surface_columns,
            config.attention,
            config.recurrent,
            config.doc_statistics,
            config.plain_markup,
        )

    @classmethod
    def load(cls, directory: str | Path, config: TaggerConfig) -> TaggerHeads:
        """The trained heads of a tagger directory, ready to run (eval mode)."""
        from safetensors.torch import load_file

        heads = cls.for_config(config)
        heads.load_state_dict(load_file(str(Path(directory) / HEADS_FILE)))
        return heads.eval()

    def line_logits(self, lines: torch.Tensor) -> torch.Tensor:
        """lines: [n_lines, features (+ surface)] of one document → one logit per line (remove)."""
        if not len(lines):
            return torch.zeros(0)
        projected = self.project(lines[:, : self.features])
        if self.surface is not None:
            projected = projected + self.surface(lines[:, self.features :])
        mixed = torch.nn.functional.gelu(self.context(projected.T.unsqueeze(0)).squeeze(0).T)
        parts = [projected, mixed]
        if self.attention is not None:
            parts.append(self.attention(mixed.unsqueeze(0)).squeeze(0))
        if self.recurrent is not None:
            parts.append(self.recurrent(mixed.unsqueeze(0))[0].squeeze(0))
        return self.line(torch.cat(parts, dim=-1)).squeeze(-1)

    def pooled(
        self,
        lines: torch.Tensor,
        line_logits: torch.Tensor | None = None,
        texts: Sequence[str] | None = None,
        origins: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """What the doc probe reads: the lines' mean weighted by P(content) (from `line_logits` when given),
        and with `doc_statistics` the `document_statistics` of `texts`, the same lines' text (required then).
        With `origins` (`WordPieces.origins`), the states are of pieces of `texts`, and each line of the text
        counts with the mean P(content) of its pieces."""
        logits = self.line_logits(lines) if line_logits is None else line_logits
        content = 1.0 - torch.sigmoid(logits)
        pooled = self.doc.pool(lines, content)
        if not self.doc_statistics:
            return pooled
        if texts is None:
            raise ValueError("this doc probe reads the text of the lines too")
        if origins is not None:
            content = per_line_means(content, origins[: len(content)])
        texts = read_as_text(texts) if self.plain_markup else texts
        return torch.cat([pooled, document_statistics(texts[: len(content)], content)])

    def forward(self, lines: torch.Tensor, texts: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """lines: [n_lines, features (+ surface)] of one document (`texts`: their text, for `doc_statistics`)
        → (line logits [n_lines], doc logit [])."""
        line_logits = self.line_logits(lines)
        return line_logits, self.doc(self.pooled(lines, line_logits, texts))


def per_line_means(values: torch.Tensor, origins: Sequence[int]) -> torch.Tensor:
    """The mean of `values` (one per piece) over the pieces of each line (`origins`: each piece's line, in
    order, every line up to the last one having a piece)."""
    if not len(values):
        return values
    index = torch.tensor(list(origins), dtype=torch.long)
    lines = int(index[-1]) + 1
    sums = torch.zeros(lines, dtype=values.dtype).index_add_(0, index, values)
    return sums / torch.zeros(lines, dtype=values.dtype).index_add_(0, index, torch.ones_like(values))


class Segmenter:
    """How the tagger cuts numbered lines into tokens and forward passes (its backbone's tokenizer only)."""

    def __init__(self, config: TaggerConfig) -> None:

        self.config = config
        self.tokenizer = auto_tokenizer(resolve_base(config.base))
        self.bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        self.newline = self.tokenizer.encode("a\n", add_special_tokens=False)[-1:]

    def pieces(self, lines: Sequence[str], first_number: int = 0) -> list[list[int]]:
        """The tokens of each numbered line, cut to `max_line_tokens` and ended by a newline."""
        cut = self.config.max_line_tokens - len(self.newline)
        encode = self.tokenizer.encode
        return [
            encode(number_line(first_number + offset, line), add_special_tokens=False)[:cut] + self.newline
            for offset, line in enumerate(lines)
        ]

    def windows(self, pieces: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
        """(start, end) line ranges whose pieces, after the BOS, fit one forward pass each."""
        windows, start, tokens = [], 0, len(self.bos)
        for index, piece in enumerate(pieces):
            if index > start and tokens + len(piece) > self.config.max_tokens:
                windows.append((start, index))
                start, tokens = index, len(self.bos)
            tokens += len(piece)
        windows.append((start, len(pieces)))
        return windows


class Backbone(Segmenter):
    """The first `depth` layers of a causal LM, turning numbered lines into line states."""

    def __init__(self, config: TaggerConfig, device: str = "cpu", dtype: str = "float32") -> None:
        """dtype: the backbone's compute dtype ("float32", "bfloat16", or "auto": `auto_dtype` of the device);
        states always come out as float32."""
        super().__init__(config)
        self.device = canonical_device(device)
        self.dtype = dtype_name(dtype, self.device)
        base = resolve_base(config.base)
        self.decoder = _load_decoder(base, config.depth, max(config.layers), self.device, self.dtype)

    @torch.no_grad()  # not inference_mode: the states also feed head training
    def line_states(self, lines: Sequence[str], first_number: int = 0, first_window_only: bool = False) -> torch.Tensor:
        """[lines, features]: the chosen hidden states at each line's last token (its newline). With
        `first_window_only`, only the lines of the first forward pass (what the doc head reads)."""
        return self.batch_line_states([(lines, first_number, first_window_only)])[0]

    @torch.no_grad()
    def batch_line_states(
        self, items: Sequence[tuple[Sequence[str], int, bool]], max_batch_tokens: int = 16384
    ) -> list[torch.Tensor]:
        """`line_states` of many (lines, first_number, first_window_only) at once: every forward pass of
        every item, sorted by length and run in right-padded batches (a causal model's states at real
        tokens never see the padding after them)."""
        passes: list[tuple[int, list[int], list[int]]] = []  # (item, ids, positions of line ends)
        for item, (lines, first_number, first_window_only) in enumerate(items):
            pieces = self.pieces(lines, first_number)
            windows = self.windows(pieces) if pieces else []
            for start, end in windows[:1] if first_window_only else windows:
                ids, ends = list(self.bos), []
                for piece in pieces[start:end]:
                    ids.extend(piece)
                    ends.append(len(ids) - 1)
                passes.append((item, ids, ends))
        states: dict[int, torch.Tensor] = {}  # by pass
        order = sorted(range(len(passes)), key=lambda index: len(passes[index][1]))
        batch: list[int] = []
        for index in [*order, None]:
            width = len(passes[index][1]) if index is not None else 0
            if batch and (index is None or (len(batch) + 1) * width > max_batch_tokens):
                states.update(self._forward([passes[i] for i in batch], batch))
                batch = []
            if index is not None:
                batch.append(index)
        by_item: list[list[torch.Tensor]] = [[] for _ in items]
        for index, (item, _, _) in enumerate(passes):  # the passes of an item in order: its lines in order
            by_item[item].append(states[index])
        empty = torch.zeros((0, self.config.features))
        return [torch.cat(parts) if parts else empty for parts in by_item]

    def _forward(self, passes: list[tuple[int, list[int], list[int]]], keys: list[int]) -> dict[int, torch.Tensor]:
        """One right-padded forward pass over the passes: the line states of each, by key."""
        width = max(len(ids) for _, ids, _ in passes)
        batch = torch.zeros((len(passes), width), dtype=torch.long)
        for row, (_, ids, _) in enumerate(passes):
            batch[row, : len(ids)] = torch.tensor(ids)
        output = self.decoder(batch.to(self.device), output_hidden_states=True)
        hidden = torch.cat([output.hidden_states[layer] for layer in self.config.layers], dim=-1)
        return {
            key: hidden[row, ends].float().cpu()
            for row, (key, (_, _, ends)) in enumerate(zip(keys, passes, strict=True))
        }


def canonical_device(device: str) -> str:
    """One name per device ('cuda' → 'cuda:0' when that is the current one), so the weight cache, which
    keys on the name, loads one copy per device."""
    parsed = torch.device(device)
    if parsed.type == "cuda" and parsed.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(parsed)


@functools.lru_cache(maxsize=2)
def _load_decoder(base: str, depth: int, last_read: int, device: str, dtype: str = "float32"):
    """The first `depth` layers of `base` (the backbone is only read: no gradients flow into it). The
    model's final norm applies to the state of layer `depth` only; when no state that deep is read
    (`last_read` < `depth`), the layers after `last_read` and the norm are left out, which yields the same
    states for less work. Taggers of one process on the same base (doc and chunk stage, each with its own
    depth) share one copy of the weights: a view is read-only (`.to()`, `.train()` on one acts on all)."""
    decoder = _load_base_decoder(base, device, dtype)
    view = copy.copy(decoder)  # shares every parameter with `decoder`
    for name, table in decoder.__dict__.items():  # but not its tables: a change to one view stays in it
        if name.endswith("hooks"):
            setattr(view, name, type(table)())  # no hooks of its own yet
        elif name in ("_modules", "_parameters", "_buffers"):
            setattr(view, name, type(table)(table))  # the same entries, in a table of its own
    view.layers = nn.ModuleList(decoder.layers[:last_read])  # TaggerConfig keeps last_read <= depth
    view.config = copy.deepcopy(decoder.config)
    view.config.num_hidden_layers = last_read
    if last_read < depth:
        view.norm = nn.Identity()
    return view


@functools.lru_cache(maxsize=2)
def _load_base_decoder(base: str, device: str, dtype: str = "float32"):
    """All layers of `base`'s decoder, loaded once per process, device and dtype."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))  # states are read as float32
    decoder = model.model.to(device).eval()
    # transformers hooks the layers that record hidden states at a model's first forward pass; do it here,
    # once, so the views (which share the layers and copy the "hooked" mark) do not hook them again
    with torch.no_grad():
        decoder(torch.zeros((1, 1), dtype=torch.long, device=device), output_hidden_states=True)
    return decoder


class TaggerWriter(ProgramWriter):
    """Reads ProX prompts (doc or chunk, any tokenization mode) and writes programs by classification."""

    def __init__(
        self,
        directory: str | Path,
        tokenizer: Tokenizer,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        line_threshold: float | None = None,
        doc_threshold: float | None = None,
    ) -> None:
        """dtype: the backbone's ("auto": bfloat16 on a GPU or where a CPU runs it faster, float32 elsewhere;
        the heads read float32 states either way, and bfloat16 states move few decisions).
        line_threshold / doc_threshold: replace the directory's (higher: remove fewer lines / drop fewer
        documents)."""
        directory = Path(directory)
        self.config = TaggerConfig.load(directory)
        overrides = {"line_threshold": line_threshold, "doc_threshold": doc_threshold}
        self.config = replace(self.config, **{k: v for k, v in overrides.items() if v is not None})
        self.prompt_tokenizer = tokenizer
        self.backbone = Backbone(self.config, device, dtype)
        self.heads = TaggerHeads.load(directory, self.config)
        self.word_head = WordHead.load(directory) if self.config.word_threshold is not None else None
        # a CPU runs one full window fastest alone (measured: benchmarks/bench_refine.py); a GPU wants batches
        self.batch_tokens = self.config.max_tokens if device == "cpu" else 8 * self.config.max_tokens

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, grammar: str | None = None
    ) -> list[Generation]:  # classification writes only valid programs: no grammar needed
        """Every prompt's program: the heads' from one batched pass of the backbone over the lines of the prompts
        they decide, the others' from `_fallback`."""
        readings = [_read_prompt(self.prompt_tokenizer.decode(list(prompt)), self.config) for prompt in prompts]
        generations: list[Generation | None] = [self._fallback(reading) for reading in readings]
        headed = [index for index, generation in enumerate(generations) if generation is None]
        # a chunk's content lines are numbered from 0, as in training: their numbers in the text depend on its layout
        items = [(readings[i].read.pieces, 0, readings[i].is_doc) for i in headed]
        with torch.inference_mode():  # the backbone reads only the prompts its heads decide
            states = self.backbone.batch_line_states(items, self.batch_tokens)
            for index, state in zip(headed, states, strict=True):
                generations[index] = self._write(
                    readings[index], self.config.head_inputs(state, readings[index].read.pieces)
                )
        return generations

    def _fallback(self, reading: PromptReading) -> Generation | None:
        """The program of a prompt the heads need not or cannot read, named in its note; else None. A chunk
        without lines keeps itself; one outside the tagger's languages gets the C4 line rule's program. A
        document outside them is kept unjudged: the doc head was not validated there, and a doc-level rule
        for other languages is no better (the Gopher rules count English stop words). The language and the
        rule read what the backbone would (`reading.read`: Markdown as its text, not its link titles; validation
        scores the rule on the lines as they are, as a user would run it)."""
        if not reading.content.lines and not reading.is_doc:
            return Generation(KeepChunk().render())
        languages = self.config.languages
        if reading.is_doc and self.config.doc_languages is not None:
            languages = self.config.doc_languages
        read = reading.read.pieces
        language = foreign_language(read, languages) if languages is not None else None
        if language is None:
            return None
        if reading.is_doc:
            return Generation(KeepDoc().render(), note=f"{UNJUDGED}: {language}")
        remove = [not keep for keep in c4_line_rule(read)]  # a chunk's reading: one piece per content line
        program = self._line_program(reading, remove, word_noise=False)  # the word head was not validated there
        return Generation(program.render(), note=f"{C4_FALLBACK}: {language}")

    def _write(self, reading: PromptReading, states: torch.Tensor) -> Generation:
        """The program the heads write from the states of a prompt's content lines; a doc program comes with
        its drop probability."""
        if reading.is_doc:
            pooled = self.heads.pooled(states, texts=reading.content.lines, origins=reading.read.origins)
            drop_probability = float(torch.sigmoid(self.heads.doc(pooled)))
            program = DropDoc() if drop_probability >= self.config.doc_threshold else KeepDoc()
            return Generation(program.render(), score=round(drop_probability, 4))
        line_removed = (torch.sigmoid(self.heads.line_logits(states)) >= self.config.line_threshold).tolist()
        return Generation(self._line_program(reading, line_removed).render())

    def _line_program(self, reading: PromptReading, line_removed: list[bool], word_noise: bool = True) -> Program:
        """A chunk's program from one decision per content line: its lines removed (`ContentLines.spread`),
        then the `normalize` calls for the removed pieces of kept lines (`inline_noise.piece_calls`; only when
        the prompt is the whole page, `chunk_budget` 0: a call runs on the whole document, and only then does
        the check that it touches nothing kept see all of it) and, with `word_noise`, for the noise the word
        head marks."""
        remove = reading.content.spread(line_removed)
        pieces_removed: list[list[bool] | None] = [None] * len(reading.raw)
        for position, gone in zip(reading.content.positions, line_removed, strict=True):
            pieces_removed[position] = [*(pieces_removed[position] or []), gone]
        calls = piece_calls(reading.raw, remove, pieces_removed) if self.config.chunk_budget == 0 else []
        if self.word_head is not None and word_noise:
            calls += self._inline_calls(reading, remove, pieces_removed)
        return with_normalize(Program.removing(remove, reading.first_number), calls)

    def _inline_calls(
        self, reading: PromptReading, remove: list[bool], pieces_removed: list[list[bool] | None]
    ) -> list[Normalize]:
        """The `normalize` calls for the noise the word head marks in the kept lines: read on the content
        lines, written on the prompt's own lines (so each source is the document's text), checked against
        every line of the prompt (`inline_noise.normalize_calls`; a whole-page prompt, as the bundled tagger
        reads, checks the whole document). A line of several pieces (`layout.LINE_BREAKS`) is left to
        `inline_noise.piece_calls`."""
        content = reading.content
        whole = [flags is not None and len(flags) == 1 for flags in pieces_removed]
        kept = [index for index, position in enumerate(content.positions) if not remove[position] and whole[position]]
        marks = self.word_head.noise_probabilities([content.lines[index] for index in kept])
        noise: list[list[bool] | None] = [None] * len(reading.raw)
        for index, probabilities in zip(kept, marks, strict=True):
            if probabilities is not None:
                noise[content.positions[index]] = [p >= self.config.word_threshold for p in probabilities]
        return normalize_calls(reading.raw, remove, noise)


@dataclass(frozen=True)
class PromptReading:
    """What the tagger reads in a ProX prompt: the content lines (`proxkit.layout`) of the document (doc
    prompt) or of a chunk's numbered lines without their numbers, and the number of the chunk's first line;
    `read`: what of them the backbone reads (`TaggerConfig.doc_reading` of a document, `chunk_reading` of a
    chunk's content lines: whole, since its program decides each line)."""

    is_doc: bool
    content: ContentLines
    first_number: int = 0
    raw: tuple[str, ...] = ()  # a chunk's lines as the prompt shows them (without their numbers)
    read: WordPieces | None = None

    def __post_init__(self) -> None:
        if self.read is None:
            object.__setattr__(self, "read", WordPieces.whole(self.content.lines))


def doc_prompt_lines(lines: Sequence[str], tokenizer: Tokenizer, plain: bool = False) -> list[str]:
    """The content lines a tagger reads of a document of `lines` at run time: its doc prompt (content lines
    only, as plain text with `plain` (`plain_markup`), cut to the prompt's token budget with `tokenizer`, the
    tagger's prompt tokenizer) read back as the writer reads it. Training reads documents through this, so
    the doc probe learns from what it will see."""
    ids = doc_prompt_ids(content_text("\n".join(lines), plain), tokenizer).ids
    return list(_read_prompt(tokenizer.decode(list(ids))).content.lines)


def _is_chunk(body: str) -> bool:
    """Whether a prompt's content is a chunk (`[doc]`, numbered lines or none, `[/doc]`), not a document
    that only opens with a `[doc]` line."""
    if not (body.startswith("[doc]\n") and body.endswith("\n[/doc]")):
        return False
    first = body.removeprefix("[doc]\n").split("\n", 1)[0]
    return first in ("", "[/doc]") or _NUMBERED.fullmatch(first) is not None


def _read_prompt(prompt: str, config: TaggerConfig | None = None) -> PromptReading:
    body = prompt.split("<</SYS>>", 1)[-1].strip()
    body = body.removesuffix("[/INST]").rstrip()
    if not _is_chunk(body):
        content = content_lines(body.split("\n"))
        return PromptReading(True, content, read=config.doc_reading(content.lines) if config is not None else None)
    numbered = [_NUMBERED.fullmatch(line) for line in body.removeprefix("[doc]\n").split("\n")]
    numbered = [match for match in numbered if match]
    first = int(numbered[0].group(1)) if numbered else 0
    raw = tuple(match.group(2) for match in numbered)
    content = content_lines(raw)
    return PromptReading(False, content, first, raw, config.chunk_reading(content.lines) if config else None)
