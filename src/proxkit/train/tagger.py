"""Train the line tagger (see `proxkit.models.tagger`) from seed examples.

The backbone is frozen, so its line states are computed once per example and stored (one file each, so
an interrupted extraction resumes where it stopped); the heads then train in seconds on those states.
Validation holds out whole sites: a page's site never lies in both the training and the test side.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from loguru import logger

from proxkit.languages import guess_language
from proxkit.layout import is_markdown
from proxkit.models.tagger import HEADS_FILE, Backbone, DocProbe, TaggerConfig, TaggerHeads, doc_prompt_lines
from proxkit.models.writer import dtype_name
from proxkit.prompts import Tokenizer
from proxkit.train.evaluate import CLEAN_TEXT, clean_text_pages, doc_scores, group_rows, rule_doc_scores
from proxkit.train.metrics import c4_line_rule, chunk_report, mean
from proxkit.train.plan import TrainingPlan
from proxkit.train.progress import Progress, run_fingerprint
from proxkit.train.seed import Example
from proxkit.train.split import HELD_OUT_FOLDS, held_out_split, sample_with_renderings, site_folds

STATES_VERSION = 2  # bump when the way line states are computed changes
Ranges = list[tuple[int, int]]  # (start, end) line ranges of an example, one per run-time chunk
FINAL_TASK = "final"  # the progress record of the final heads


class StateStore:
    """Line states per example, computed with the frozen backbone once and kept on disk; handed out as
    what the heads read (`TaggerConfig.head_inputs`).

    With a `chunk_budget` (the default of `prox train tagger`), a chunk page is read as `prox refine` reads
    it: cut into chunks of numbered lines (`chunk_document` with the backbone's tokenizer; each chunk's lines
    numbered from 0, as `proxkit.writing.content_chunks` gives them at run time in any layout), each chunk its
    own prompt and its own set of surface features, so what the heads learn from is what they see at run
    time. `chunks` gives the (start, end) line ranges; without a budget a page is one range. Doc examples
    read their first forward pass either way, so one cache file serves both; the trainers hand them over cut
    to their run-time doc prompt (`as_read_at_run_time`)."""

    def __init__(
        self,
        folder: str | Path,
        config: TaggerConfig,
        chunk_budget: int = 0,
        device: str | None = None,
        dtype: str = "float32",
    ) -> None:
        """device: where the backbone runs (None: the GPU when there is one); dtype: what it computes in
        ("auto": the fastest on that device, `auto_dtype`); states are stored as float32 either way, in a
        folder of their own per compute dtype."""
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype_name(dtype, self.device)
        settings = [STATES_VERSION, config.base, config.depth, config.layers, config.max_line_tokens, config.max_tokens]
        if self.dtype != "float32":  # float32 keeps its old folder name, so existing caches stay valid
            settings.append(self.dtype)
        self.folder = Path(folder) / hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:12]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.chunk_budget = chunk_budget
        self._backbone: Backbone | None = None
        self._chunks: dict[str, Ranges] = {}

    def read_lines(self, example: Example) -> list[str]:
        """The lines the backbone reads of the example: a document's as its doc head reads them
        (`TaggerConfig.doc_reading`), a page's chunk by chunk as the writer reads each chunk
        (`TaggerConfig.chunk_reading`: whether a chunk is Markdown is judged on its own lines)."""
        if example.stage == "doc":
            return self.config.doc_reading(example.lines).pieces
        read = self.config.chunk_reading
        return [line for start, end in self.chunks(example) for line in read(example.lines[start:end]).pieces]

    def _key(self, example: Example, read: Sequence[str] | None = None) -> str:
        """The example's cache name: what the backbone reads of it (`read`: its `read_lines`, when the caller
        has them), and for a chunked chunk page the budget (and that each chunk's lines are numbered from 0:
        caches of the earlier global numbers are not read)."""
        budget = self.chunk_budget if example.stage == "chunk" else 0
        text = "\n".join(self.read_lines(example) if read is None else read)
        name = f"{example.stage}\0{example.source}\0{text}" + (f"\0chunks of {budget} from 0" if budget else "")
        return hashlib.sha1(name.encode(errors="surrogatepass")).hexdigest()

    def chunks(self, example: Example) -> Ranges:
        """The (start, end) line ranges the writer reads this example in: its run-time chunks (chunk stage,
        with a budget), else the whole example."""
        if example.stage != "chunk":
            return [(0, len(self.read_lines(example)))]
        if not self.chunk_budget:
            return [(0, len(example.lines))]
        key = hashlib.sha1("\n".join(example.lines).encode(errors="surrogatepass")).hexdigest()
        if key not in self._chunks:
            from proxkit.prompts import chunk_document, line_cost

            cost = line_cost(prompt_tokenizer(self.config))
            chunks = chunk_document("\n".join(example.lines), cost, self.chunk_budget)
            self._chunks[key] = [(chunk.first_line, chunk.last_line + 1) for chunk in chunks]
        return self._chunks[key]

    def states(self, example: Example) -> torch.Tensor:
        lines = self.read_lines(example)  # read once: Markdown is read as text line by line
        path = self.folder / f"{self._key(example, lines)}.pt"
        chunks = self.chunks(example) if example.stage == "chunk" else [(0, len(lines))]
        if path.exists():
            states = torch.load(path)
        else:
            if self._backbone is None:
                self._backbone = Backbone(self.config, self.device, self.dtype)
            # the doc head reads one forward pass's worth, as at run time
            first_window_only = example.stage == "doc"
            items = [(lines[start:end], 0, first_window_only) for start, end in chunks]  # each numbered from 0
            # one pass at a time, as the writer on a CPU: padded batches cost more there
            states = torch.cat(self._backbone.batch_line_states(items, self.config.max_tokens))
            written = path.with_suffix(f".{os.getpid()}.tmp")  # processes filling one cache (`--shard`) may
            torch.save(states, written)  # meet on one example (two renderings of the same text)
            written.rename(path)
        return torch.cat([self.config.head_inputs(states[start:end], lines[start:end]) for start, end in chunks])

    def all(self, examples: Sequence[Example]) -> list[torch.Tensor]:
        from tqdm import tqdm

        return [self.states(example) for example in tqdm(examples, desc="line states", unit="page")]


def line_weights(lines: Sequence[str]) -> torch.Tensor:
    """Each line's weight in the line loss, 1 + log(1 + words): a long content line lost costs more than
    a short menu line, as it does in content-word F1."""
    return torch.tensor([1.0 + math.log1p(len(line.split())) for line in lines])


def is_clean_copy(example: Example) -> bool:
    """Whether the example is a page's gold read alone (`clean_text_pages`), added to the training pages."""
    return example.rendering == CLEAN_TEXT


def whole_ranges(states: Sequence[torch.Tensor]) -> list[Ranges]:
    """Each example read in one piece: a single range over all its rows."""
    return [[(0, len(state))] for state in states]


def split_chunks(
    examples: Sequence[Example], states: Sequence[torch.Tensor], chunks: Sequence[Ranges] | None
) -> tuple[list[Example], list[torch.Tensor]]:
    """The units the line head learns from: each example cut into its `chunks` (`StateStore.chunks`; None:
    whole examples), with its labels and states."""
    if chunks is None:
        return list(examples), list(states)
    units, unit_states = [], []
    for example, state, ranges in zip(examples, states, chunks, strict=True):
        if len(ranges) == 1:  # read whole (a doc example's states may cover its first window only)
            units.append(example)
            unit_states.append(state)
            continue
        bounds = [0, *(end for _, end in ranges)]
        if [start for start, _ in ranges] != bounds[:-1] or bounds[-1] != len(state):
            raise ValueError(f"{example.source}: chunks {ranges} do not cover its {len(state)} lines in order")
        for start, end in ranges:
            remove = example.remove[start:end] if example.remove is not None else None
            units.append(replace(example, lines=example.lines[start:end], remove=remove, gold=None))
            unit_states.append(state[start:end])
    return units, unit_states


def train_heads(
    examples: Sequence[Example], states: Sequence[torch.Tensor], config: TaggerConfig, epochs: int = 30, seed: int = 0
) -> TaggerHeads:
    """Heads for these examples: the line head trained on the chunk examples (binary cross-entropy weighted
    by `line_weights`, AdamW, one page per step), then the doc probe fitted on the doc examples."""
    torch.manual_seed(seed)
    heads = TaggerHeads.for_config(config)
    pages = [(example, state) for example, state in zip(examples, states, strict=True) if example.remove]
    optimizer = torch.optim.AdamW(heads.parameters(), lr=1e-3, weight_decay=1e-2)
    weights = [line_weights(example.lines[: len(example.remove)]) for example, _ in pages]
    order = list(range(len(pages)))
    rng = random.Random(seed)
    heads.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            example, state = pages[index]
            target = torch.tensor(example.remove, dtype=torch.float32)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                heads.line_logits(state), target, weight=weights[index] / weights[index].mean()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    heads.eval()
    docs = [(example, state) for example, state in zip(examples, states, strict=True) if example.drop is not None]
    if docs:
        pooled = pool_documents(heads, [state for _, state in docs], [example.lines for example, _ in docs])
        drops = [bool(example.drop) for example, _ in docs]
        fit_doc_probe(heads.doc, pooled, drops, choose_penalty(pooled, drops, seed=seed))
    return heads


@torch.no_grad()
def pool_documents(
    heads: TaggerHeads,
    states: Sequence[torch.Tensor],
    texts: Sequence[Sequence[str]],
    config: TaggerConfig | None = None,
) -> torch.Tensor:
    """[documents, features]: what the doc probe reads of each document (`texts`: each one's lines, of which
    the first `len(state)` were read; `config`: how the backbone read them, `TaggerConfig.doc_reading`, when
    not whole)."""
    rows = []
    for state, lines in zip(states, texts, strict=True):
        origins = config.doc_reading(lines).origins if config is not None else None
        rows.append(heads.pooled(state, texts=lines, origins=origins))
    return torch.stack(rows)


@torch.inference_mode()
def line_probabilities(
    heads: TaggerHeads, states: Sequence[torch.Tensor], chunks: Sequence[Ranges] | None = None
) -> list[list[float]]:
    """P(remove) of every line of each example, the line head run on each of its `chunks` apart (None:
    on the whole example), as the writer runs it."""
    return [
        [p for start, end in ranges for p in torch.sigmoid(heads.line_logits(state[start:end])).tolist()]
        for state, ranges in zip(states, chunks or whole_ranges(states), strict=True)
    ]


@torch.inference_mode()
def drop_probabilities(
    heads: TaggerHeads, states: Sequence[torch.Tensor], texts: Sequence[Sequence[str]]
) -> list[float]:
    """P(drop) of each document (`texts`: its lines, as for `pool_documents`)."""
    return torch.sigmoid(heads.doc(pool_documents(heads, states, texts))).reshape(-1).tolist()


PENALTIES = (0.3, 1.0, 3.0, 10.0, 30.0)  # L2 strengths tried for the doc probe (mean loss + penalty/2·|w|²)


def fit_doc_probe(
    probe: DocProbe, pooled: torch.Tensor, drops: Sequence[bool], penalty: float, weights: torch.Tensor | None = None
) -> DocProbe:
    """Fit the probe in place: standardize the pooled states, then L2-regularized logistic regression
    (full batch, L-BFGS); `weights`: each document's share of the loss and of the standardization (default:
    equal)."""
    share = torch.full((len(drops),), 1.0) if weights is None else weights.float()
    share = share / share.sum()
    with torch.no_grad():
        center = (share[:, None] * pooled).sum(dim=0)
        probe.center.copy_(center)
        probe.scale.copy_((share[:, None] * (pooled - center).square()).sum(dim=0).sqrt().clamp_min(1e-6))
        probe.linear.weight.zero_()
        probe.linear.bias.zero_()
    target = torch.tensor(drops, dtype=torch.float32)
    optimizer = torch.optim.LBFGS(probe.linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        losses = torch.nn.functional.binary_cross_entropy_with_logits(probe(pooled), target, reduction="none")
        loss = (share * losses).sum()
        loss = loss + penalty / 2 * probe.linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


def choose_penalty(pooled: torch.Tensor, drops: Sequence[bool], folds: int = 5, seed: int = 0) -> float:
    """The L2 strength with the best cross-validated accuracy on these documents (ties: the stronger)."""
    if len(drops) < 2 * folds:
        return PENALTIES[-1]
    scores = {}
    for penalty in PENALTIES:
        probabilities = held_out_drop_probabilities(pooled, drops, lambda *_, p=penalty: p, folds, seed)
        scores[penalty] = sum((p >= 0.5) == drop for p, drop in zip(probabilities, drops, strict=True))
    return max(reversed(PENALTIES), key=scores.__getitem__)


def cross_validated_probabilities(
    pooled: torch.Tensor, rows: Sequence[int], fit: Callable[[set[int]], DocProbe], folds: int, seed: int
) -> dict[int, float]:
    """P(drop) of each of `rows` from a probe fitted without it: k-fold over the rows in a shuffled order,
    each fold's probe from `fit(held_out_rows)`."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    probabilities: dict[int, float] = {}
    for fold in range(folds):
        test = order[fold::folds]
        probe = fit(set(test))
        with torch.no_grad():
            probabilities |= dict(zip(test, torch.sigmoid(probe(pooled[test])).reshape(-1).tolist(), strict=True))
    return probabilities


def held_out_drop_probabilities(
    pooled: torch.Tensor,
    drops: Sequence[bool],
    penalty: Callable[[torch.Tensor, list[bool]], float],
    folds: int,
    seed: int,
) -> list[float]:
    """P(drop) of each document from a probe fitted without it (`cross_validated_probabilities` over all of
    them), each fold's probe fitted on the other folds with the L2 strength `penalty(train_pooled, train_drops)`."""

    def fit(held_out: set[int]) -> DocProbe:
        train = [i for i in range(len(drops)) if i not in held_out]
        train_pooled, train_drops = pooled[train], [drops[i] for i in train]
        return fit_doc_probe(DocProbe(pooled.shape[1]), train_pooled, train_drops, penalty(train_pooled, train_drops))

    probabilities = cross_validated_probabilities(pooled, range(len(drops)), fit, folds, seed)
    return [probabilities[i] for i in range(len(drops))]


def best_threshold(examples: Sequence[Example], probabilities: Sequence[Sequence[float]]) -> float:
    """The line threshold with the best mean content-word F1 on these (validation) pages."""
    candidates = [round(0.15 + 0.05 * step, 2) for step in range(16)]  # 0.15 .. 0.90

    def score(threshold: float) -> float:
        removes = [[p >= threshold for p in probs] for probs in probabilities]
        return chunk_report(examples, removes)["content_word_f1"]

    return max(candidates, key=score)


def fold_tasks(
    examples: Sequence[Example],
    states: Sequence[torch.Tensor],
    config: TaggerConfig,
    folds: int = 5,
    epochs: int = 30,
    chunks: Sequence[Ranges] | None = None,
    by_collection: bool = False,
    only: Sequence[str] = (),
) -> list[Callable[[], dict]]:
    """One task per fold of the cross-validation (`run_tasks` runs them; `mean_fold_scores` sums up their
    results): train on the other folds' pages (minus a validation part, which sets the threshold), test on
    this fold's; the C4 line rule is scored on the same test pages, also per rendering and language. Folds
    split by site (`folds` of them; the validation part is the next fold), or with `by_collection` one fold
    per collection, left out whole (the validation part is site fold 0 of the other collections' pages).
    Clean copies (`is_clean_copy`) share their page's site and collection, so its fold; they are trained
    on, never validated or tested on. `chunks`: each page's run-time chunks (`StateStore.chunks`); `only`:
    with `by_collection`, the folds of these collections alone (`check_collections`)."""
    ranges = chunks or whole_ranges(states)
    if by_collection:
        names = sorted({example.collection for example in examples})
        assignment = [names.index(example.collection) for example in examples]
        validation_side = [fold == 0 for fold in site_folds(examples, HELD_OUT_FOLDS)]
        folds = len(names)
    else:
        names, assignment = [], site_folds(examples, folds)

    def part_of(index: int, fold: int, test_fold: int) -> str:
        if fold == test_fold:
            return "test"
        in_validation = validation_side[index] if by_collection else fold == (test_fold + 1) % folds
        return "validation" if in_validation else "train"

    def run_fold(test_fold: int) -> dict:
        split = {"train": [], "validation": [], "test": []}
        for index, fold in enumerate(assignment):
            part = part_of(index, fold, test_fold)
            if part == "train" or not is_clean_copy(examples[index]):  # a clean copy only ever trains
                split[part].append(index)

        def pick(part: str) -> tuple[list[Example], list[torch.Tensor], list[Ranges]]:
            return tuple([sequence[i] for i in split[part]] for sequence in (examples, states, ranges))

        train_examples, train_states, train_ranges = pick("train")
        heads = train_heads(*split_chunks(train_examples, train_states, train_ranges), config, epochs)
        validation, validation_states, validation_ranges = pick("validation")
        threshold = best_threshold(validation, line_probabilities(heads, validation_states, validation_ranges))
        test, test_states, test_ranges = pick("test")
        probabilities = line_probabilities(heads, test_states, test_ranges)
        removes = [[p >= threshold for p in probs] for probs in probabilities]
        rule = [[not keep for keep in c4_line_rule(e.lines)] for e in test]
        result = {"fold": test_fold, "threshold": threshold, **scored(test, removes, rule)}
        if by_collection:
            result["collection"] = names[test_fold]

        def per_group(by: tuple[str, ...]) -> dict:
            return {
                name: scored([test[i] for i in rows], [removes[i] for i in rows], [rule[i] for i in rows])
                for name, rows in group_rows(test, by).items()
            }

        result["groups"] = per_group(("rendering", "language"))
        if any(example.page_type for example in test):  # WCXB's page types: article, forum, product…
            result["page_types"] = per_group(("page_type",))
        logger.info(
            f"fold {test_fold} {result.get('collection', '')}: tagger {result['tagger']} | C4 {result['c4_line_rule']}"
        )
        return result

    if only and not by_collection:
        raise ValueError("only some folds: of a leave-one-collection-out cross-validation")
    chosen = [names.index(name) for name in only] if only else range(folds)
    return [functools.partial(run_fold, fold) for fold in chosen]


class UnknownCollections(ValueError):
    """Collections to leave out that no chunk page belongs to."""


def check_collections(pages: Sequence[Example], names: Sequence[str]) -> None:
    """UnknownCollections unless each of `names` is the collection of some of `pages`."""
    known = sorted({page.collection for page in pages})
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownCollections(f"no chunk pages of {', '.join(unknown)} to leave out; there are {', '.join(known)}")


def scored(pages: Sequence[Example], removes: Sequence[Sequence[bool]], rule: Sequence[Sequence[bool]]) -> dict:
    """`chunk_report` of the tagger's and of the C4 rule's removals on the same pages."""
    return {"tagger": chunk_report(pages, removes), "c4_line_rule": chunk_report(pages, rule)}


_TASKS: list[Callable[[], object]] = []  # what the forked workers of `run_tasks` run


def _run_task(index: int) -> tuple[int, object]:
    return index, _TASKS[index]()


def run_tasks(
    tasks: Sequence[Callable[[], object]], jobs: int = 1, on_result: Callable[[int, object], None] | None = None
) -> list:
    """The results of zero-argument tasks, in order: here when `jobs` is 1, else in `jobs` forked worker
    processes of one torch thread each, which share the tasks' inputs (line states: hundreds of MB) with
    this process copy-on-write instead of receiving a pickled copy; results travel back pickled, each equal to
    a one-thread run of its task here. A task that fails (or Ctrl-C) stops the others at once. `on_result`
    (index, result) is called here as each task finishes, before the others have."""
    import multiprocessing

    def finished(index: int, result: object) -> object:
        if on_result is not None:
            on_result(index, result)
        return result

    parallel = jobs > 1 and len(tasks) > 1
    if parallel and "fork" not in multiprocessing.get_all_start_methods():
        logger.warning("this platform cannot fork: the tasks run one after another")
        parallel = False
    if not parallel:
        return [finished(index, task()) for index, task in enumerate(tasks)]
    global _TASKS
    _TASKS = list(tasks)
    try:
        context = multiprocessing.get_context("fork")
        results: list = [None] * len(tasks)
        # results as they come, so a failure is raised at once; leaving the block terminates the workers
        with context.Pool(min(jobs, len(tasks)), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for index, result in pool.imap_unordered(_run_task, range(len(tasks))):  # started in order
                results[index] = finished(index, result)
        return results
    finally:
        _TASKS = []


def prompt_tokenizer(config: TaggerConfig) -> Tokenizer:
    """The tokenizer `prox refine` builds a tagger's prompts with: its backbone's (`ModelSpec.load_tokenizer`)."""
    from proxkit.models.backbones import resolve_base
    from proxkit.models.tokenizers import load_tokenizer

    return load_tokenizer(resolve_base(config.base))


def as_read_at_run_time(examples: Sequence[Example], config: TaggerConfig) -> list[Example]:
    """The examples with each doc example's lines cut to what the writer reads of its doc prompt
    (`doc_prompt_lines`, with the tagger's prompt tokenizer); chunk examples as they are."""
    tokenizer = prompt_tokenizer(config)
    return [
        replace(example, lines=doc_prompt_lines(example.lines, tokenizer, config.plain_markup))
        if example.stage == "doc"
        else example
        for example in examples
    ]


def page_doc_states(
    config: TaggerConfig,
    docs: Sequence[Example],
    pages: Sequence[Example],
    page_states: Sequence[torch.Tensor],
    chunks: Sequence[Ranges] | None = None,
) -> tuple[list[Example], list[torch.Tensor]]:
    """Doc-stage examples of pages whose line states are known, with the states of their first forward pass
    (what the doc head reads) cut from the page's: no backbone run needed. When the page was read in
    `chunks`, only the rows of its first chunk are exact (a causal backbone's states of a prefix do not
    depend on what follows it), so the window is cut to that chunk. A page read as plain text
    (`plain_markup`, Markdown) is not reused: its doc prompt holds other lines."""
    from proxkit.models.tagger import Segmenter

    if config.doc_piece_words:  # the doc head reads pieces of lines, not the page's lines
        return [], []
    segmenter = Segmenter(config)
    tokenizer = prompt_tokenizer(config)

    by_page = {(page.source, page.rendering): index for index, page in enumerate(pages)}
    chosen, states = [], []
    for doc in docs:
        index = by_page.get((doc.source, doc.rendering))
        plain = config.plain_markup and is_markdown(doc.lines)
        if index is not None and doc.lines == pages[index].lines and not plain:
            end = segmenter.windows(segmenter.pieces(doc.lines))[0][1]
            if chunks is not None:
                end = min(end, chunks[index][0][1])
            end = min(
                end, len(doc_prompt_lines(doc.lines, tokenizer, config.plain_markup))
            )  # the run-time prompt may hold fewer
            chosen.append(doc)
            # the backbone's columns of the page's states, with surface features of these lines alone
            states.append(config.head_inputs(page_states[index][:end, : config.features], doc.lines[:end]))
    return chosen, states


def cross_validate_docs(
    examples: Sequence[Example],
    states: Sequence[torch.Tensor],
    heads: TaggerHeads,
    threshold: float = 0.5,
    folds: int = 5,
    repeats: int = 5,
) -> dict:
    """Doc-level accuracy and keep-F1 of the doc probe, cross-validated over `examples` and repeated over
    `repeats` shufflings (mean and sd over repeats). The penalty is chosen inside each training side;
    `heads`' line head, which pools the documents, must not have been trained on them."""
    pooled = pool_documents(heads, states, [example.lines for example in examples])
    drops = [bool(example.drop) for example in examples]
    runs = []
    for repeat in range(repeats):
        probabilities = held_out_drop_probabilities(pooled, drops, choose_penalty, folds, seed=repeat)
        runs.append(doc_scores([p >= threshold for p in probabilities], examples))
    summary = {"gopher_c4_fineweb_rules": rule_doc_scores(examples)}
    for metric in ("accuracy", "keep_f1"):
        summary[metric] = _spread([run[metric] for run in runs])
    return {**summary, "documents": len(examples), "folds": folds, "repeats": repeats}


def mean_fold_scores(results: list[dict]) -> dict:
    """Mean and spread over folds of each system's scores, and of the tagger's paired gain over C4."""
    summary = {}
    for system in ("tagger", "c4_line_rule"):
        for metric in ("removed_line_f1", "kept_line_f1", "content_word_f1"):
            values = [result[system][metric] for result in results]
            summary[f"{system}.{metric}"] = _spread(values)
    gains = [result["tagger"]["content_word_f1"] - result["c4_line_rule"]["content_word_f1"] for result in results]
    summary["content_word_f1_gain_over_c4"] = _spread(gains)
    return summary


def validated_languages(results: Sequence[dict], min_pages: int = 5) -> tuple[str, ...] | None:
    """The languages in which the folds' tagger kept lines at least as well as the C4 line rule (kept-line
    F1, each fold's score weighted by its pages), among those with `min_pages` test pages or more; None when
    no test page has a language (the tagger then uses its head everywhere)."""
    scores: dict[str, list[tuple[int, float, float]]] = {}
    for result in results:
        for name, group in result.get("groups", {}).items():
            language = dict(part.split("=", 1) for part in name.split(",")).get("language", "-")
            if language != "-":
                pages = group["tagger"]["pages"]
                tagger, rule = group["tagger"]["kept_line_f1"], group["c4_line_rule"]["kept_line_f1"]
                scores.setdefault(language, []).append((pages, tagger, rule))
    if not scores:
        return None
    validated = []
    for language, rows in sorted(scores.items()):
        pages = sum(n for n, _, _ in rows)
        if pages >= min_pages and sum(n * (t - r) for n, t, r in rows) >= 0:
            validated.append(language)
    return tuple(validated)


def fitted_languages(documents: Sequence[Example], min_share: float = 0.05, min_documents: int = 5) -> tuple | None:
    """The languages (`proxkit.languages.guess_language`) a doc head is fitted in: the commonest among its
    documents, and any other of at least `min_share` of them and `min_documents` or more; None when none of
    them can be told."""
    guesses = Counter(guess_language(document.lines) for document in documents)
    guesses.pop(None, None)
    if not guesses:
        return None
    least = max(min_documents, min_share * len(documents))
    enough = {language for language, count in guesses.items() if count >= least}
    return tuple(sorted(enough | {guesses.most_common(1)[0][0]}))


def _spread(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation, rounded to 4 places."""
    average = mean(values)
    sd = (sum((v - average) ** 2 for v in values) / max(len(values) - 1, 1)) ** 0.5
    return {"mean": round(average, 4), "sd": round(sd, 4)}


def train_tagger(
    examples: Sequence[Example],
    states: Sequence[torch.Tensor],
    config: TaggerConfig,
    epochs: int = 30,
    chunks: Sequence[Ranges] | None = None,
) -> tuple[TaggerHeads, float]:
    """The shipped tagger's heads and line threshold: the heads trained on all but the held-out sites of the
    chunk pages (`held_out_split`), on which the threshold is chosen (their clean copies, if any, are left
    out); the doc probe is fitted on all doc examples. `chunks`: each example's run-time chunks
    (`StateStore.chunks`)."""
    ranges = chunks or whole_ranges(states)
    _, validation_pages = held_out_split([e for e in examples if e.stage == "chunk"])
    held_out = {id(example) for example in validation_pages}
    validation = [i for i, e in enumerate(examples) if id(e) in held_out and not is_clean_copy(e)]
    train = [i for i, e in enumerate(examples) if id(e) not in held_out]
    units = split_chunks([examples[i] for i in train], [states[i] for i in train], [ranges[i] for i in train])
    heads = train_heads(*units, config, epochs)
    probabilities = line_probabilities(heads, [states[i] for i in validation], [ranges[i] for i in validation])
    return heads, best_threshold([examples[i] for i in validation], probabilities)


def train_and_validate(
    examples: Sequence[Example], config: TaggerConfig, output: Path, states: Path, plan: TrainingPlan
) -> dict | None:
    """`prox train tagger`: the line states of the sampled chunk pages and the DCLM documents (cached in
    `states`), the final heads (written to `output` as soon as they are trained) and, beside them, the
    cross-validation folds, each kept as it finishes so the same command run again reads it back
    (`proxkit.train.progress`); then the report (also saved in `tagger.json`) with the languages the folds
    validated. None when `plan.extract_only` or with a `plan.shard` (its share of the states only). With
    `plan.only_collections`, those folds alone: their report, written to `FOLDS_REPORT` in `output`, and no
    heads."""
    pages = sample_with_renderings([e for e in examples if e.stage == "chunk"], plan.max_pages, plan.also_renderings)
    only = plan.only_collections
    check_collections(pages, only)  # before hours of line states
    chunk = pages + (clean_text_pages(pages) if plan.clean_copies else [])
    folds, epochs = plan.folds, plan.epochs
    store = StateStore(states, config, config.chunk_budget, plan.device, plan.dtype)
    # documents labelled on their own (DCLM) train the doc probe; the labelled web pages' doc examples
    # (keep when the gold has >= 100 words, drop when it is empty) reuse their page's states, as a check
    own = as_read_at_run_time([e for e in examples if e.stage == "doc" and e.site.startswith("dclm")], config)
    if plan.shard is not None:  # one share of the states, beside other processes filling the same cache
        index, count = plan.shard
        store.all((chunk + own)[index::count])
        return None
    chunk_states = store.all(chunk)
    chunks = [store.chunks(example) for example in chunk]
    own_states = store.all(own)
    docs = [e for e in examples if e.stage == "doc"]
    labelled, labelled_states = page_doc_states(config, docs, pages, chunk_states, chunks)
    if plan.extract_only:
        return None
    # the folds of the site cross-validation and the final heads: independent trainings, run side by side;
    # those an earlier run of the same command finished are read back instead (`proxkit.train.progress`)
    by_collection = plan.leave_collection_out or bool(only)
    fold_options = {"chunks": chunks, "by_collection": by_collection, "only": only}
    tasks = fold_tasks(chunk, chunk_states, config, folds, epochs, **fold_options) if folds or only else []
    own_chunks = [store.chunks(example) for example in own]
    final = functools.partial(train_tagger, chunk + own, chunk_states + own_states, config, epochs, chunks + own_chunks)
    settings = {"epochs": epochs, "folds": folds, "by_collection": by_collection, "dtype": store.dtype}
    settings |= {"only": list(only)} if only else {}
    settings["states_version"] = STATES_VERSION
    config.doc_languages = fitted_languages(own)  # the doc probe is fitted on these documents
    progress = Progress(output, run_fingerprint(chunk + own, config, **settings))
    runnable = {} if only else {FINAL_TASK: final}  # the longest first
    runnable |= {f"fold-{index}": task for index, task in enumerate(tasks)}
    heads = None if only else _finished_heads(progress, output, config)
    results = {name: progress.result(name) for name in runnable if name != FINAL_TASK}
    pending = [name for name in runnable if (heads is None if name == FINAL_TASK else results[name] is None)]
    if len(pending) < len(runnable):
        logger.info(f"{len(runnable) - len(pending)} of {len(runnable)} training tasks finished earlier: read back")

    def keep(index: int, result: object) -> None:  # each as soon as it is done: a later failure leaves it
        name = pending[index]
        if name != FINAL_TASK:
            progress.record(name, result)
            return
        trained, config.line_threshold = result
        save_tagger(trained, config, output)
        progress.record_weights(FINAL_TASK, output / HEADS_FILE, {"threshold": config.line_threshold})

    for name, result in zip(pending, run_tasks([runnable[name] for name in pending], plan.jobs, keep), strict=True):
        results[name] = result
    if only:  # some folds alone: their report, and no tagger
        return _folds_report(list(results.values()), output, progress)
    heads = results.pop(FINAL_TASK)[0] if heads is None else heads
    fold_results = list(results.values())
    report = {}
    if folds:  # the shipped line head never saw the DCLM documents, so it may pool them for the probe's CV
        report["chunk"] = mean_fold_scores(fold_results)
        report["chunk_folds"] = fold_results
        config.languages = validated_languages(fold_results)
        report["doc"] = cross_validate_docs(own, own_states, heads, config.doc_threshold, folds)
    if labelled:  # a sanity check, not training data: labelled pages (keep: >= 100 gold words; drop: no gold);
        # with a chunk budget the probe reads each page's first chunk only (`page_doc_states`)
        probabilities = drop_probabilities(heads, labelled_states, [example.lines for example in labelled])
        drops = [p >= config.doc_threshold for p in probabilities]
        report["doc_labelled_pages"] = doc_scores(drops, labelled)
    config.metrics = report
    config.save(output)  # the heads were written when trained (`keep`)
    progress.clear()  # the run has ended: nothing is left to resume
    return report


FOLDS_REPORT = "folds.json"  # what `prox train tagger --only-collection` writes instead of a tagger


def _folds_report(fold_results: list[dict], output: Path, progress: Progress) -> dict:
    """The report of folds run alone (`TrainingPlan.only_collections`), also written to `FOLDS_REPORT`."""
    report = {"chunk": mean_fold_scores(fold_results), "chunk_folds": fold_results}
    output.mkdir(parents=True, exist_ok=True)
    (output / FOLDS_REPORT).write_text(json.dumps(report, indent=2))
    progress.clear()
    return report


def _finished_heads(progress: Progress, output: Path, config: TaggerConfig) -> TaggerHeads | None:
    """The final heads an earlier run of the same command wrote to `output` (their threshold set in `config`);
    None when there are none to trust."""
    finished = progress.weights(FINAL_TASK, output / HEADS_FILE)
    if finished is None:
        return None
    config.line_threshold = finished["threshold"]
    return TaggerHeads.load(output, config)


def save_tagger(heads: TaggerHeads, config: TaggerConfig, output: Path) -> None:
    """A tagger directory `TaggerWriter` loads: the heads' weights and the config."""
    from safetensors.torch import save_file

    output.mkdir(parents=True, exist_ok=True)
    save_file(heads.state_dict(), str(output / HEADS_FILE))
    config.save(output)
