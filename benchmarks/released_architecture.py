"""A randomly initialised model of the released ProX refiners' architecture (PROX_SPEC §4: Llama, hidden
1280, 24 layers, 16 heads, 1 KV head, context 2048; intermediate size 2048 gives its 354M parameters) with
the Llama-2 tokenizer: what a throughput run needs when the released weights cannot be fetched.

    python benchmarks/released_architecture.py OUT_DIR [--tokenizer ../shared/tokenizers/llama2]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DEFAULT_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "tokenizers" / "llama2"


def released_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32000, hidden_size=1280, intermediate_size=2048, num_hidden_layers=24, num_attention_heads=16,
        num_key_value_heads=1, max_position_embeddings=2048, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip


def build(directory: Path, tokenizer: Path = DEFAULT_TOKENIZER, seed: int = 0) -> Path:
    """Write the random model (bfloat16 weights) and the tokenizer files into `directory`; return it."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(released_config())
    directory.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(directory)
    for path in tokenizer.iterdir():
        shutil.copy(path, directory / path.name)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    args = parser.parse_args()
    print(build(args.output, args.tokenizer))


if __name__ == "__main__":
    main()
