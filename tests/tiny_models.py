"""Tiny, randomly initialised refining models built in the tests: a SentencePiece tokenizer trained on the
spot and a 2-layer Llama, saved as a model directory like the released refiners."""

from __future__ import annotations

import io
from pathlib import Path

CORPUS = [
    "remove_lines(line_start=0, line_end=3)",
    'normalize(source_str="Click here", target_str="")',
    "keep_chunk()",
    "keep_doc()",
    "drop_doc()",
    "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n[doc]\n[000]Home [/doc] [/INST]",
    "The council approved new cycle lanes through the city centre on Tuesday.",
    "Home | About | Contact | Privacy policy | Terms of use | Copyright 2024",
]


def build_tiny_refiner(directory: Path, seed: int = 0, vocab_size: int = 400) -> Path:
    """Write tokenizer.model and a random LlamaForCausalLM into `directory`; return it."""
    import sentencepiece

    directory.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",  # as Llama-2: newlines and spaces survive
        remove_extra_whitespaces=False,
        split_digits=True,
        minloglevel=2,
    )
    (directory / "tokenizer.model").write_bytes(model.getvalue())
    return save_random_llama(directory, vocab_size, layers=2, seed=seed)


def save_random_llama(directory: Path, vocab_size: int, layers: int, seed: int) -> Path:
    """A randomly initialised Llama (hidden size 32, BOS 1, EOS 2) saved into `directory`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def build_tiny_backbone(directory: Path, seed: int = 0) -> Path:
    """A random 4-layer Llama with a byte-level BPE tokenizer in transformers format (no tokenizer.model),
    like SmolLM2's: a backbone for the line tagger."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tokenizer.save_pretrained(directory)
    return save_random_llama(directory, len(tokenizer), layers=4, seed=seed)
