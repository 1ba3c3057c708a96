"""Refining throughput next to the model's own limit, on the same documents and model, in one run:

(a) `prox refine` end to end (reader, doc and chunk stages, executor, writer; model loading included);
(b) the bound: a pure forward pass of the same network over exactly the token sequences its forward passes
    read in (a) — prefill only, at the best of several batch sizes and of the dtypes this machine runs fast
    (float32, and bfloat16 where the CPU or GPU has bfloat16 instructions), so a/b is judged against the hardware;
(c) the authors' style: transformers `generate`, one prompt at a time, greedy, with the generative LM the
    refiner is built on (the model itself for a generative refiner, its base LM for the line tagger), each
    prompt decoding as many tokens as the program (a) wrote for it (what a trained refiner stops at); by
    default a seeded sample of 16 prompts is timed and scaled to all of them (`--naive-sample 0`: all).

Prints documents/s, raw tokens/s (D_raw of stats.json per second) and the ratios a/b and a/c, medians over
repeats, and the program failure ratio of (a). Targets (issue 5, CPU): a/b >= 0.8, a/c >= 3, failures 0%.

    python benchmarks/bench_refine.py [--docs 24] [--repeats 3] [--model M | --doc-model D --chunk-model C]
                                      [--dtype auto|float32|bfloat16]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2]
    / "shared/data/web_text_samples/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
)


class Recorder:
    """What the refiners' networks read and wrote during (a): the forward inputs and (prompt, program) pairs."""

    def __init__(self) -> None:
        self.forward_inputs: dict[int, list[list[int]]] = {}  # by network (id of its module)
        self.networks: dict[int, object] = {}  # the writer that owns each network
        self.programs: list[tuple[list[int], str]] = []
        self.writers: list = []
        self._hooks: dict[int, object] = {}  # one per network, removed when the recording ends

    @contextmanager
    def recording(self):
        """Wrap every writer `prox refine` loads so its calls and its network's inputs are recorded."""
        from proxkit.models.registry import ModelSpec

        original = ModelSpec.load_writer

        def load_writer(spec, tokenizer, rank=0):
            writer = original(spec, tokenizer, rank)
            self._watch(writer)
            return writer

        ModelSpec.load_writer = load_writer
        try:
            yield self
        finally:
            ModelSpec.load_writer = original
            for hook in self._hooks.values():
                hook.remove()

    def _watch(self, writer) -> None:
        from proxkit.models.hf import TransformersWriter
        from proxkit.models.tagger import TaggerWriter

        self.writers.append(writer)
        if isinstance(writer, TaggerWriter):
            decoder = writer.backbone.decoder
            if id(decoder) not in self._hooks:
                self.networks[id(decoder)] = writer
                record = functools.partial(self._record_ids, id(decoder))
                self._hooks[id(decoder)] = decoder.register_forward_pre_hook(record, with_kwargs=True)
        elif not isinstance(writer, TransformersWriter):
            raise SystemExit(f"bench_refine measures in-process models, not {type(writer).__name__}")
        for method in ("generate", "choose"):
            self._wrap(writer, method)

    def _wrap(self, writer, method: str) -> None:
        from proxkit.models.hf import TransformersWriter

        inner = getattr(writer, method)

        def recorded(prompts, *args, **kwargs):
            generations = inner(prompts, *args, **kwargs)
            self.programs += [(list(p), g.text) for p, g in zip(prompts, generations, strict=True)]
            if isinstance(writer, TransformersWriter):
                self.networks.setdefault(id(writer.model), writer)
                self.forward_inputs.setdefault(id(writer.model), []).extend(list(p) for p in prompts)
            return generations

        setattr(writer, method, recorded)

    def _record_ids(self, key, _module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            self.forward_inputs.setdefault(key, []).extend(ids.tolist())


def load_documents(path: Path, count: int) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        records = [json.loads(line) for line in file if line.strip()]
    return [{"id": str(r["id"]), "text": r["text"]} for r in records if r["text"].strip()][:count]


def run_refine(
    documents_file: Path, models: dict, recorder: Recorder | None = None, dtype: str = "auto"
) -> tuple[float, dict]:
    """(a): seconds of one `prox refine` run with these `doc_model`/`chunk_model`, and its stats."""
    from proxkit.run import RefineConfig, refine

    with tempfile.TemporaryDirectory() as output:
        options = {"backend_options": {"dtype": dtype}}
        config = RefineConfig(inputs=[str(documents_file)], output=output, progress=False, **models, **options)
        started = time.perf_counter()
        if recorder is None:
            stats = refine(config)
        else:
            with recorder.recording():
                stats = refine(config)
        return time.perf_counter() - started, stats


def _models(args: argparse.Namespace) -> dict:
    """The refine models: --doc-model / --chunk-model, else --model for both (a bundled name: the bundled pair)."""
    from proxkit.models.registry import BUNDLED

    models = {} if args.model in BUNDLED else {"doc_model": args.model, "chunk_model": args.model}
    return models | {
        f"{stage}_model": getattr(args, f"{stage}_model")
        for stage in ("doc", "chunk")
        if getattr(args, f"{stage}_model")
    }


def network(writer, dtype: torch.dtype | None = None):
    """The network (a) ran forward passes of, as a callable on padded ids and an attention mask; with
    `dtype`, a copy of it in that dtype."""
    import copy

    from proxkit.models.tagger import TaggerWriter

    module = writer.backbone.decoder if isinstance(writer, TaggerWriter) else writer.model
    if dtype is not None and module.dtype != dtype:
        module = copy.deepcopy(module).to(dtype)
    device = next(module.parameters()).device
    if isinstance(writer, TaggerWriter):
        return lambda ids, mask: module(
            input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True
        )
    return lambda ids, mask: module(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=1)


def fast_dtypes() -> list[torch.dtype]:
    """The dtypes this machine may run fastest: float32, and bfloat16 on a GPU or a CPU with AMX."""
    from proxkit.models.writer import cpu_flags

    has_bf16 = bool(cpu_flags() & {"amx_bf16", "avx512_bf16"}) or torch.cuda.is_available()
    return [torch.float32] + ([torch.bfloat16] if has_bf16 else [])


@torch.inference_mode()
def prefill_seconds(forward, sequences: list[list[int]], batch_size: int) -> float:
    """(b): a forward pass over every sequence, sorted by length and padded per batch."""
    ordered = sorted(sequences, key=len)
    started = time.perf_counter()
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        width = max(len(ids) for ids in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        forward(ids, mask)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def generative_source(writer) -> str:
    from proxkit.models.backbones import resolve_base
    from proxkit.models.tagger import TaggerWriter

    if isinstance(writer, TaggerWriter):
        return resolve_base(writer.config.base)
    return writer.model.name_or_path


@torch.inference_mode()
def naive_seconds(model, tokenizer, programs: list[tuple[list[int], str]], sample: int, seed: int = 0) -> float:
    """(c): one `generate` per prompt, each decoding the program's length in tokens (+ its end token). With
    `sample` < the number of prompts, a seeded uniform sample of them is timed and the total scaled up (the
    prompts run one at a time, so the total is the sum of independent per-prompt times)."""
    import random

    chosen = random.Random(seed).sample(programs, sample) if 0 < sample < len(programs) else programs
    started = time.perf_counter()
    for prompt, program in chosen:
        length = len(tokenizer.encode(program)) + 1
        model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
            max_new_tokens=length,
            min_new_tokens=length,
            do_sample=False,
            pad_token_id=tokenizer.eos_id,
        )
    return (time.perf_counter() - started) * len(programs) / len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a JSONL(.gz) of documents")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="proxkit/web-chunk-tagger", help="bundled name or model directory")
    parser.add_argument("--doc-model", help="the doc stage's model (default: --model)")
    parser.add_argument("--chunk-model", help="the chunk stage's model (default: --model)")
    parser.add_argument("--batch-sizes", default="1,4,16", help="batch sizes tried for the bound (b)")
    parser.add_argument("--dtype", default="auto", help="the models' dtype in (a): auto, float32, bfloat16")
    parser.add_argument("--skip-naive", action="store_true", help="leave (c) out")
    parser.add_argument("--naive-repeats", type=int, default=1, help="repeats of (c), by far the slowest")
    parser.add_argument("--naive-sample", type=int, default=16, help="prompts timed in (c), scaled (0: all)")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found: pass --data")
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as folder:
        documents_file = Path(folder) / "documents.jsonl"
        documents = load_documents(args.data, args.docs)
        documents_file.write_text("".join(json.dumps(d) + "\n" for d in documents))
        recorder = Recorder()
        models = _models(args)
        run_refine(documents_file, models, recorder, args.dtype)  # warm-up run: records what the networks read
        refine_times, stats = [], {}
        for _ in range(args.repeats):
            seconds, stats = run_refine(documents_file, models, dtype=args.dtype)
            refine_times.append(seconds)

    raw_tokens = stats["tokens"]["raw"]

    def report(name: str, seconds: float) -> None:
        print(
            f"{name:18s} {len(documents) / seconds:8.2f} docs/s {raw_tokens / seconds:10.0f} raw tokens/s", flush=True
        )

    names = models or "bundled"
    print(f"{len(documents)} documents, {raw_tokens:,} raw tokens, models {names}, medians of {args.repeats}")
    print(f"programs written in (a): {len(recorder.programs)} prompts, {len(recorder.writers)} model loads")
    refine_seconds = statistics.median(refine_times)
    report("a_refine", refine_seconds)
    bound = 0.0  # each network (a doc and a chunk tagger may differ in depth) at its best batch size and dtype
    for number, (key, sequences) in enumerate(recorder.forward_inputs.items(), start=1):
        times = {}
        for dtype in fast_dtypes():
            forward = network(recorder.networks[key], dtype)
            for size in (int(size) for size in args.batch_sizes.split(",")):
                runs = [prefill_seconds(forward, sequences, size) for _ in range(args.repeats)]
                times[(str(dtype).removeprefix("torch."), size)] = statistics.median(runs)
        (best_dtype, best_batch) = min(times, key=times.get)
        tokens = sum(map(len, sequences))
        print(f"(b) network {number}: {tokens:,} forward-pass tokens, best: {best_dtype}, batch size {best_batch}")
        bound += times[(best_dtype, best_batch)]
    report("b_prefill_bound", bound)
    print(f"a/b = {bound / refine_seconds:.2f} (target >= 0.8)", flush=True)
    programs = sum(stats["calls"].values()) or 1
    failures = sum(stats["program_errors"].values())
    print(f"program failure ratio: {failures / programs:.2%} ({failures} errors in {programs} calls)", flush=True)
    if args.skip_naive:
        return
    from transformers import AutoModelForCausalLM

    writer = recorder.writers[0]
    base = AutoModelForCausalLM.from_pretrained(generative_source(writer)).eval()
    tokenizer = getattr(writer, "prompt_tokenizer", None) or writer.tokenizer
    naive = statistics.median(
        naive_seconds(base, tokenizer, recorder.programs, args.naive_sample) for _ in range(args.naive_repeats)
    )
    timed = min(args.naive_sample or len(recorder.programs), len(recorder.programs))
    print(f"(c) timed on {timed} of {len(recorder.programs)} prompts (seeded sample), scaled to all")
    report("c_naive_generate", naive)
    print(f"a/c = {naive / refine_seconds:.2f} (target >= 3)")


if __name__ == "__main__":
    main()
