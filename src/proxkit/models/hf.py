"""The transformers backend: the model in this process, CPU by default, GPU when there is one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from proxkit.models.base import Generation, ProgramWriter, length_batches
from proxkit.prompts import Tokenizer


class TransformersWriter(ProgramWriter):
    """Greedy, batched, length-sorted generation with a transformers causal LM.

    max_batch: prompts per forward pass; max_batch_tokens: bound on prompts x (prompt + new tokens).
    dtype: "auto" (bfloat16 on a GPU that supports it, float32 otherwise), "float32", "bfloat16" or "float16".
    """

    def __init__(
        self,
        model: str | Path,
        tokenizer: Tokenizer,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_batch: int = 16,
        max_batch_tokens: int = 65536,
        gguf_file: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.max_batch_tokens = max_batch_tokens
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=self._dtype(dtype), **extra)
        self.model.to(self.device).eval()
        configured = self.model.generation_config.eos_token_id
        configured = configured if isinstance(configured, list) else [configured] if configured is not None else []
        self.eos_ids = sorted({tokenizer.eos_id, *configured})
        self.pad_id = self.model.config.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_id

    def _dtype(self, name: str):
        torch = self._torch
        if name == "auto":
            on_gpu = self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
            return torch.bfloat16 if on_gpu else torch.float32
        try:
            return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
        except KeyError:
            raise ValueError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16") from None

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        from transformers import GenerationConfig

        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos_ids, pad_token_id=self.pad_id
        )
        results: list[Generation | None] = [None] * len(prompts)
        lengths = [len(prompt) + max_new_tokens for prompt in prompts]
        for batch in length_batches(lengths, self.max_batch, self.max_batch_tokens):
            for index, generation in zip(batch, self._generate_batch([prompts[i] for i in batch], config), strict=True):
                results[index] = generation
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[Sequence[int]], config) -> list[Generation]:
        torch = self._torch
        width = max(len(prompt) for prompt in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding: every prompt ends where generation starts
            input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            attention[row, width - len(prompt) :] = 1
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), generation_config=config
            )
        generations = []
        for row in output[:, width:].tolist():
            end = next((i for i, token in enumerate(row) if token in self.eos_ids), len(row))
            generations.append(Generation(self.tokenizer.decode(row[:end]), new_tokens=end))
        return generations
