"""The tagger's word head: which words of a kept line are noise ("Share this: Facebook" glued to a
paragraph, "Read more »", a byline's date), so the tagger can write `normalize` calls as well as
`remove_lines`.

The backbone reads only the first `max_line_tokens` tokens of a line, and in-line noise sits as often at a
line's end, so this head reads words, not backbone states: each word of a line (`inline_noise.word_spans`)
as a hashed embedding of its text plus its shape (capitals, digits, the marks around it, its place in the
line), mixed along the line by a small bidirectional GRU, scored. It costs a fraction of a millisecond per
line. What it marks becomes `normalize` calls only through `inline_noise.normalize_calls` (specific sources,
every occurrence noise), so a doubtful mark writes nothing.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from proxkit.inline_noise import word_spans, words

WORD_HEAD_FILE = "word_head.safetensors"
BUCKETS = 1 << 16  # hashed word embeddings
SHAPE_FEATURES = 10
_MARK = re.compile(r"[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?]")


def bucket(word: str) -> int:
    """The embedding row of a (normalized) word: a stable hash, the same in every process."""
    return zlib.crc32(word.encode("utf-8", "surrogatepass")) % BUCKETS


def line_words(line: str) -> tuple[list[int], torch.Tensor] | None:
    """A line's words as (buckets, [words, SHAPE_FEATURES] shape features), in `word_spans` order; None
    when the line has no words or its words cannot be located."""
    spans = word_spans(line)
    if not spans:
        return None
    last = max(len(spans) - 1, 1)
    rows = []
    for index, (start, end) in enumerate(spans):
        raw = line[start:end]
        before = line[spans[index - 1][1] : start] if index else line[:start]
        after = line[end : spans[index + 1][0]] if index + 1 < len(spans) else line[end:]
        rows.append(
            [
                float(raw[:1].isupper()),
                float(len(raw) > 1 and raw.isupper()),
                sum(c.isdigit() for c in raw) / len(raw),
                math.log1p(len(raw)) / 3,
                float(bool(_MARK.search(before))),
                float(bool(_MARK.search(after))),
                float(bool(_SENTENCE_END.search(before))),
                float(bool(_SENTENCE_END.search(after))),
                index / last,
                math.log1p(len(spans)) / 4,
            ]
        )
    return [bucket(token) for token in words(line)], torch.tensor(rows, dtype=torch.float32)


class WordHead(nn.Module):
    """P(noise) of each word of a line: hashed embedding + shape → GELU → bidirectional GRU → logit."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(BUCKETS, width)
        self.shape = nn.Linear(SHAPE_FEATURES, width)
        self.mix = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.score = nn.Linear(2 * width, 1)

    def forward(self, buckets: torch.Tensor, shapes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """buckets [lines, words], shapes [lines, words, SHAPE_FEATURES] (right-padded), lengths [lines] →
        logits [lines, words] (padding positions are meaningless)."""
        inputs = torch.nn.functional.gelu(self.embed(buckets) + self.shape(shapes))
        packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        mixed, _ = self.mix(packed)
        mixed, _ = nn.utils.rnn.pad_packed_sequence(mixed, batch_first=True, total_length=buckets.shape[1])
        return self.score(mixed).squeeze(-1)

    @torch.inference_mode()
    def noise_probabilities(self, lines: Sequence[str]) -> list[list[float] | None]:
        """Per line, P(noise) of each of its `word_spans` words (None: a line without locatable words)."""
        read = [line_words(line) for line in lines]
        present = [index for index, item in enumerate(read) if item is not None]
        out: list[list[float] | None] = [None] * len(lines)
        if not present:
            return out
        buckets, shapes, lengths = batch([read[i] for i in present])
        probabilities = torch.sigmoid(self(buckets, shapes, lengths))
        for row, index in enumerate(present):
            out[index] = probabilities[row, : lengths[row]].tolist()
        return out

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file(self.state_dict(), str(Path(directory) / WORD_HEAD_FILE))

    @classmethod
    def load(cls, directory: str | Path) -> WordHead | None:
        """The word head of a tagger directory, ready to run; None when the tagger has none."""
        path = Path(directory) / WORD_HEAD_FILE
        if not path.is_file():
            return None
        from safetensors.torch import load_file

        state = load_file(str(path))
        head = cls(width=state["embed.weight"].shape[1])
        head.load_state_dict(state)
        return head.eval()


def batch(items: Sequence[tuple[list[int], torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (buckets, shapes, lengths) of several lines' `line_words`."""
    lengths = torch.tensor([len(ids) for ids, _ in items])
    width = int(lengths.max())
    buckets = torch.zeros((len(items), width), dtype=torch.long)
    shapes = torch.zeros((len(items), width, SHAPE_FEATURES))
    for row, (ids, shape) in enumerate(items):
        buckets[row, : len(ids)] = torch.tensor(ids)
        shapes[row, : len(ids)] = shape
    return buckets, shapes, lengths
