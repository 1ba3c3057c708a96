"""The vLLM backend: one offline engine per GPU, prompts passed as token ids (extra `proxkit[vllm]`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from proxkit.models.base import Generation, ProgramWriter


class VLLMWriter(ProgramWriter):
    """Greedy generation with `vllm.LLM`. With several GPUs, run one task per GPU: the task of rank r takes
    GPU r mod (number of GPUs) unless CUDA_VISIBLE_DEVICES is already set."""

    def __init__(
        self,
        model: str | Path,
        *,
        rank: int = 0,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,  # None: the model's own context (2048 for the released refiners)
        tokenizer: str | None = None,
    ) -> None:
        try:
            import torch
            from vllm import LLM
        except ImportError as error:
            raise ImportError(f"the vllm backend needs vLLM: pip install 'proxkit[vllm]' ({error})") from None
        if not torch.cuda.is_available():
            raise RuntimeError("the vllm backend needs a CUDA GPU; use --backend transformers on a CPU machine")
        if "CUDA_VISIBLE_DEVICES" not in os.environ:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(rank % torch.cuda.device_count())
        self.engine = LLM(
            model=str(model),
            tokenizer=tokenizer or str(model),
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            **({"max_model_len": max_model_len} if max_model_len else {}),
            enable_prefix_caching=True,  # every prompt shares the system-prompt prefix
        )

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, grammar: str | None = None
    ) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            temperature=0.0, max_tokens=max_new_tokens, skip_special_tokens=True, **_grammar_options(grammar)
        )
        requests = [TokensPrompt(prompt_token_ids=list(prompt)) for prompt in prompts]
        outputs = self.engine.generate(requests, params, use_tqdm=False)
        return [Generation(out.outputs[0].text, new_tokens=len(out.outputs[0].token_ids)) for out in outputs]

    def close(self) -> None:
        del self.engine


def _grammar_options(grammar: str | None) -> dict:
    """vLLM's guided decoding by an EBNF grammar (structured outputs; xgrammar inside), across versions."""
    if grammar is None:
        return {}
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(grammar=grammar)}
    except ImportError:  # vLLM before 0.11
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(grammar=grammar)}
