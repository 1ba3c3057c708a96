"""Pre-train a small decoder from scratch on one corpus: a byte-level BPE tokenizer shared by every arm,
documents packed into fixed-length blocks, a Llama-architecture model trained with AdamW on a fixed token
budget. Packing makes every block full, so an equal token budget is also an equal number of steps.

This is the scaled-down shape of the paper's experiment (PROX_SPEC §6); for real scale, tokenize and pack
the refined corpus with datatrove and train with a pre-training framework (docs/pretraining.md).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from proxkit.experiment.config import ModelShape, TrainSettings
from proxkit.flops import count_non_embedding_parameters, training_flops

EOS = "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, path: Path):
    """A byte-level BPE (no unknown tokens) learned from `texts`, saved to `path` (tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return tokenizer


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def pack(token_lists: Sequence[Sequence[int]], eos: int, context: int, tokens: int, seed: int) -> torch.Tensor:
    """[blocks, context] ids: the documents in a seeded order, each followed by EOS, concatenated and cut into
    blocks until `tokens` are reached; a corpus smaller than the budget is repeated (in a new order)."""
    if not any(token_lists):
        raise ValueError("the corpus holds no tokens")
    rng = random.Random(seed)
    needed = max(1, tokens // context) * context
    stream: list[int] = []
    while len(stream) < needed:
        order = list(range(len(token_lists)))
        rng.shuffle(order)
        for index in order:
            stream.extend(token_lists[index])
            stream.append(eos)
            if len(stream) >= needed:
                break
    return torch.tensor(stream[:needed]).view(-1, context)


def build_model(shape: ModelShape, vocab_size: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=shape.context,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config)


@dataclass
class TrainResult:
    steps: int
    tokens: int
    epochs: float  # passes over the corpus the budget took
    final_loss: float
    parameters: int  # non-embedding (N of 6·N·D)
    flops: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def pretrain(blocks: torch.Tensor, model, settings: TrainSettings, corpus_tokens: int, seed: int) -> TrainResult:
    """Train `model` in place on the packed blocks (one pass, in a seeded order)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(blocks), generator=generator)
    steps = max(1, len(blocks) // settings.batch)
    model.to(settings.device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(0.9, 0.95),
    )
    warmup = max(1, int(steps * settings.warmup))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    started, losses = time.monotonic(), []
    for step in range(steps):
        batch = blocks[order[step * settings.batch : (step + 1) * settings.batch]].to(settings.device)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach().item())
    model.eval()
    tokens = steps * settings.batch * blocks.shape[1]
    parameters = count_non_embedding_parameters(model)
    tail = losses[-max(1, steps // 10) :]
    return TrainResult(
        steps=steps,
        tokens=tokens,
        epochs=round(tokens / max(1, corpus_tokens), 3),
        final_loss=round(sum(tail) / len(tail), 4),
        parameters=parameters,
        flops=training_flops(parameters, tokens),
        seconds=round(time.monotonic() - started, 1),
    )
