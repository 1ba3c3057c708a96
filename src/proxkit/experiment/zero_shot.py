"""Zero-shot evaluation with lm-evaluation-harness, offline: the benchmark files of a local folder become
lm-eval tasks (YAML over local JSONL), and a small torch decoder answers lm-eval's log-likelihood requests.
lm-eval does the rest — prompts, acc and acc_norm (log-likelihood normalised by the answer's length in
bytes), standard errors, and word/byte perplexity on WikiText-2.

The folder's layout is that of `../shared/data/eval_benchmarks` (llm-foundry's gauntlet JSONL, HellaSwag's
validation text, WikiText-2 raw test). GSM8K is left out: it needs generation, which a model this small
cannot do.
"""

from __future__ import annotations

import bz2
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from lm_eval.api.model import LM

GAUNTLET = "llm_foundry_gauntlet"


@dataclass(frozen=True)
class Benchmark:
    name: str
    source: str  # path under the benchmark folder
    kind: str  # "choice": query/choices/gold; "inputs": context_options/continuation/gold; "cloze"; "rolling"


BENCHMARKS = (
    Benchmark("arc_easy", f"{GAUNTLET}/world_knowledge/arc_easy.jsonl", "choice"),
    Benchmark("arc_challenge", f"{GAUNTLET}/world_knowledge/arc_challenge.jsonl", "choice"),
    Benchmark("boolq", f"{GAUNTLET}/reading_comprehension/boolq.jsonl", "choice"),
    Benchmark("commonsense_qa", f"{GAUNTLET}/commonsense_reasoning/commonsense_qa.jsonl", "choice"),
    Benchmark("copa", f"{GAUNTLET}/commonsense_reasoning/copa.jsonl", "choice"),
    Benchmark("openbook_qa", f"{GAUNTLET}/commonsense_reasoning/openbook_qa.jsonl", "choice"),
    Benchmark("piqa", f"{GAUNTLET}/commonsense_reasoning/piqa.jsonl", "choice"),
    Benchmark("siqa", f"{GAUNTLET}/commonsense_reasoning/siqa.jsonl", "choice"),
    Benchmark("winogrande", f"{GAUNTLET}/language_understanding/winogrande.jsonl", "inputs"),
    Benchmark("lambada_openai", f"{GAUNTLET}/language_understanding/lambada_openai.jsonl", "cloze"),
    Benchmark("hellaswag", "hellaswag/hellaswag_val_full.txt.bz2", "choice"),
    Benchmark("wikitext", "wikitext2_raw_test/wiki.test.raw", "rolling"),
)
PERPLEXITY_TASK = "wikitext"
ACCURACY_TASKS = tuple(b.name for b in BENCHMARKS if b.kind != "rolling")

_FIELDS = {
    "choice": {"doc_to_text": "query", "doc_to_choice": "choices", "doc_to_target": "gold"},
    "inputs": {"doc_to_text": "gold", "doc_to_choice": "context_options", "doc_to_target": "continuation"},
    "cloze": {"doc_to_text": "context", "doc_to_target": "{{' ' + continuation}}", "target_delimiter": ""},
}
_METRICS = {
    "choice": ["acc", "acc_norm"],
    "inputs": ["acc"],
    "cloze": ["perplexity", "acc"],
    "rolling": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
}
_AGGREGATION = {  # lm-eval's aggregation of each metric, and whether higher is better
    "acc": ("mean", True),
    "acc_norm": ("mean", True),
    "perplexity": ("perplexity", False),
    "word_perplexity": ("weighted_perplexity", False),
    "byte_perplexity": ("weighted_perplexity", False),
    "bits_per_byte": ("bits_per_byte", False),
}
_WIKITEXT_HELPERS = '''"""lm-eval's own WikiText functions, for the local task."""
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results, wikitext_detokenizer  # noqa: F401
'''


def prepare_tasks(benchmark_dir: Path, work_dir: Path, names: tuple[str, ...] | None = None) -> list[str]:
    """Write lm-eval task YAMLs (and converted data) for the benchmarks found under `benchmark_dir` into
    `work_dir`; return the task names. A named benchmark whose file is missing is an error."""
    benchmark_dir, work_dir = Path(benchmark_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BENCHMARKS if names is None or b.name in names]
    unknown = set(names or ()) - {b.name for b in BENCHMARKS}
    if unknown:
        raise ValueError(f"unknown benchmarks {sorted(unknown)}; choose from {[b.name for b in BENCHMARKS]}")
    tasks = []
    for benchmark in chosen:
        source = benchmark_dir / benchmark.source
        if not source.is_file():
            if names is not None:
                raise FileNotFoundError(f"{benchmark.name}: {source} not found")
            continue
        data = work_dir / f"{benchmark.name}.jsonl"
        if benchmark.name == "hellaswag":
            _write_jsonl(data, _hellaswag_items(source))
        elif benchmark.name == PERPLEXITY_TASK:
            _write_jsonl(data, ({"page": page} for page in wikitext_pages(source.read_text(encoding="utf-8"))))
            (work_dir / "wikitext_helpers.py").write_text(_WIKITEXT_HELPERS)
        else:
            data = source
        (work_dir / f"{benchmark.name}.yaml").write_text(_task_yaml(benchmark, data))
        tasks.append(f"prox_{benchmark.name}")
    if not tasks:
        raise FileNotFoundError(f"no benchmark files under {benchmark_dir} (expected e.g. {BENCHMARKS[0].source})")
    return tasks


def _task_yaml(benchmark: Benchmark, data: Path) -> str:
    lines = [
        f"task: prox_{benchmark.name}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(str(data.resolve()))}",
        "test_split: test",
    ]
    if benchmark.kind == "rolling":
        lines += [
            "output_type: loglikelihood_rolling",
            'doc_to_text: ""',
            "doc_to_target: !function wikitext_helpers.wikitext_detokenizer",
            "process_results: !function wikitext_helpers.process_results",
        ]
    else:
        output = "loglikelihood" if benchmark.kind == "cloze" else "multiple_choice"
        lines.append(f"output_type: {output}")
        lines += [f"{key}: {json.dumps(value)}" for key, value in _FIELDS[benchmark.kind].items()]
    lines.append("metric_list:")
    for metric in _METRICS[benchmark.kind]:
        aggregation, higher_is_better = _AGGREGATION[metric]
        lines += [
            f"  - metric: {metric}",
            f"    aggregation: {aggregation}",
            f"    higher_is_better: {higher_is_better}",
        ]
    lines += ["metadata:", "  version: 1.0"]
    return "\n".join(lines) + "\n"


def wikitext_pages(raw: str) -> list[str]:
    """The articles of a WikiText raw file (each starts at a ` = Title = ` line), as lm-eval's document-level
    WikiText has them."""
    pages, current = [], []
    for line in raw.replace("\r\n", "\n").split("\n"):
        if re.fullmatch(r" = [^=].* = ", line) and any(text.strip() for text in current):
            pages.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if any(text.strip() for text in current):
        pages.append("\n".join(current).strip("\n"))
    return pages


def _hellaswag_items(path: Path):
    """HellaSwag's text form: the context line, the gold index, then the four endings."""
    with bz2.open(path, "rt", encoding="utf-8") as file:
        lines = [line.rstrip("\n") for line in file]
    for start in range(0, len(lines) - 5, 6):
        yield {"query": lines[start], "gold": int(lines[start + 1]), "choices": lines[start + 2 : start + 6]}


def _write_jsonl(path: Path, items) -> None:
    with path.open("w", encoding="utf-8") as file:
        for item in items:
            file.write(json.dumps(item) + "\n")


class TorchLM(LM):
    """lm-eval's LM interface over a causal LM in this process and a `tokenizers` tokenizer."""

    def __init__(self, model, tokenizer, *, context: int, eos_id: int, batch: int = 32) -> None:
        super().__init__()
        self.model, self.tokenizer = model.eval(), tokenizer
        self.context, self.eos_id, self.batch = context, eos_id, batch
        self.model_device = next(model.parameters()).device

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids if text else []

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        pairs = []
        for request in requests:
            context, continuation = request.args
            spaces = len(context) - len(context.rstrip())  # a trailing space belongs to the answer, as lm-eval does
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            pairs.append(([self.eos_id, *self._encode(context)], self._encode(continuation)))
        return self._score(pairs)

    def loglikelihood_rolling(self, requests) -> list[float]:
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        results = []
        for request in requests:
            windows = [
                make_disjoint_window(window)
                for window in get_rolling_token_windows(
                    self._encode(request.args[0]), self.eos_id, self.context, context_len=1
                )
            ]
            results.append(sum(score for score, _ in self._score(windows)))
        return results

    def generate_until(self, requests):
        raise NotImplementedError("proxkit's experiment evaluates by log-likelihood only")

    @torch.inference_mode()
    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum of log P(continuation | context), whether greedy decoding gives it) for each pair, the inputs
        cut on the left to the model's context, batched by length."""
        inputs = [(context + continuation)[-(self.context + 1) :][:-1] for context, continuation in pairs]
        results: list[tuple[float, bool]] = [(0.0, True)] * len(pairs)
        order = sorted(range(len(pairs)), key=lambda index: len(inputs[index]))
        for start in range(0, len(order), self.batch):
            indices = order[start : start + self.batch]
            width = max(len(inputs[index]) for index in indices)
            ids = torch.zeros((len(indices), width), dtype=torch.long)
            for row, index in enumerate(indices):
                ids[row, : len(inputs[index])] = torch.tensor(inputs[index])
            logprobs = torch.log_softmax(self.model(input_ids=ids.to(self.model_device)).logits.float(), dim=-1).cpu()
            for row, index in enumerate(indices):
                continuation = pairs[index][1]
                if not continuation:
                    continue
                end = len(inputs[index])
                rows = logprobs[row, end - len(continuation) : end]
                target = torch.tensor(continuation)
                score = float(rows.gather(1, target[:, None]).sum())
                results[index] = (score, bool((rows.argmax(-1) == target).all()))
        return results


def evaluate(model, tokenizer, *, context: int, eos_id: int, task_dir: Path, tasks: list[str], limit: int | None):
    """lm-eval's results for the model: {task: {metric: value, metric_stderr: value}}."""
    import os

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    lm = TorchLM(model, tokenizer, context=context, eos_id=eos_id)
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    output = simple_evaluate(model=lm, tasks=tasks, task_manager=manager, limit=limit, log_samples=False)
    results = {}
    for task, values in output["results"].items():
        name = task.removeprefix("prox_")
        results[name] = {
            key.split(",")[0]: value
            for key, value in values.items()
            if "," in key and isinstance(value, int | float) and value == value  # drop NaN stderr
        }
    return results
