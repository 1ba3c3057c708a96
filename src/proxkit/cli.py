"""The `prox` command."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated

import typer

from proxkit import __version__
from proxkit.annotate.llm import AnnotateConfig
from proxkit.errors import ProxError
from proxkit.experiment.config import ExperimentConfig
from proxkit.models import DEFAULT_MODELS, Backend, resolve
from proxkit.models.openai import REQUEST_TIMEOUT, RETRIES
from proxkit.models.registry import NEEDS_BASE_URL
from proxkit.program import Guards, Mode, Stage, execute, split_stages
from proxkit.prompts import CHUNK_TOKEN_BUDGET
from proxkit.run import ExecutorKind, RefineConfig
from proxkit.train.plan import TrainingPlan, parse_shard


def _defaults(config: type) -> dict:
    """The default of each field of a config dataclass, by name (fields without one left out)."""
    return {field.name: field.default for field in fields(config) if field.default is not MISSING}


GUARDS = Guards()  # the executor's defaults
RUN = _defaults(RefineConfig)  # the defaults of prox refine and prox baseline
PLAN = TrainingPlan()  # the defaults of prox train tagger
EXPERIMENT = _defaults(ExperimentConfig)  # of prox experiment
ANNOTATE = _defaults(AnnotateConfig)  # of prox annotate

app = typer.Typer(
    name="prox",
    help="Refine pre-training data by programming every example (ProX).",
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"proxkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Refine pre-training data by programming every example (ProX)."""


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise typer.BadParameter(f"{path} is not UTF-8 text (byte {error.start})", param_hint=option) from None
    except OSError as error:
        raise typer.BadParameter(f"cannot read {path}: {error.strerror}", param_hint=option) from None


MinWordRatio = Annotated[float, typer.Option(help="Drop when this share of the words or less remains.")]
MinWords = Annotated[int, typer.Option(help="Drop when this many words or fewer remain.")]
MaxErrors = Annotated[int, typer.Option(help="Ignore a program with this many errors (0: never).")]
ModeOption = Annotated[Mode, typer.Option("--mode", help="strict (fixed parser) or reference (the authors').")]
Inputs = Annotated[list[str], typer.Argument(help="JSONL(.gz/.zst) or Parquet files or folders; fsspec URLs.")]
Output = Annotated[str, typer.Option("--output", "-o", help="Output folder (local path or fsspec URL).")]
TextKey = Annotated[str, typer.Option(help="The input field holding the text.")]
IdKey = Annotated[str, typer.Option(help="The input field holding the document id.")]
Limit = Annotated[int, typer.Option(help="Read at most this many documents per task (-1: all).")]
Executor = Annotated[ExecutorKind, typer.Option(help="local, ray (a Ray cluster) or slurm.")]
Tasks = Annotated[int, typer.Option(help="Split the input files into this many tasks.")]
Workers = Annotated[int | None, typer.Option(help="Tasks at the same time (default: 1 locally, all on Ray or Slurm).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar.")]
OutputFormat = Annotated[str, typer.Option(help="jsonl (gzip) or parquet (metadata as JSON text).")]
Restart = Annotated[
    bool, typer.Option(help="Start over when OUT holds another run (other inputs or options); else it is refused.")
]
BackendOption = Annotated[
    Backend, typer.Option(help="transformers (in process), vllm (GPU, or vLLM's CPU build) or openai (endpoint).")
]
EnforceEager = Annotated[bool, typer.Option(help="vllm backend: skip compilation (starts faster, runs slower).")]
BaseUrl = Annotated[str | None, typer.Option(help="openai backend: the endpoint, e.g. http://host:8000/v1")]
ApiKey = Annotated[
    str | None,
    typer.Option(
        envvar="OPENAI_API_KEY",
        help="openai backend: the API key. Prefer the variable: Slurm and Ray tasks read it from their "
        "environment, while a key given here travels in the pickled pipeline (logs/executor.pik).",
    ),
]
TokenizerOption = Annotated[str | None, typer.Option(help="Tokenizer directory when the model name is not one.")]
Device = Annotated[str | None, typer.Option(help="transformers backend: cpu, cuda, cuda:1 ...")]
Dtype = Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")]
STATES_DTYPES = ("auto", "float32", "bfloat16")


def _states_dtype(value: str) -> str:
    if value not in STATES_DTYPES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(STATES_DTYPES)}")
    return value


StatesDtype = Annotated[
    str,
    typer.Option(
        help="What the backbone computes line states in: auto (the fastest here), float32, bfloat16.",
        callback=_states_dtype,
    ),
]
RequestTimeout = Annotated[float, typer.Option(help="openai backend: seconds to wait for one reply.")]
Retries = Annotated[int, typer.Option(help="openai backend: retries of a request that timed out or got 429/5xx.")]


def _backend_options(
    backend: Backend,
    base_url: str | None,
    api_key: str | None,
    tokenizer: str | None,
    device: str | None,
    dtype: str,
    timeout: float = 60.0,
    retries: int = 3,
    enforce_eager: bool = False,
) -> dict:
    """The model options a backend takes from the command line (the others do not apply to it)."""
    options: dict = {"tokenizer": tokenizer} if tokenizer else {}
    if backend is Backend.OPENAI:
        if not base_url:
            raise typer.BadParameter(NEEDS_BASE_URL, param_hint="--base-url")
        if timeout <= 0 or retries < 0:
            raise typer.BadParameter("--request-timeout must be > 0 and --retries >= 0")
        return options | {"base_url": base_url, "api_key": api_key, "timeout": timeout, "retries": retries}
    if backend is Backend.TRANSFORMERS:
        return options | {"device": device, "dtype": dtype}
    return options | {"dtype": dtype} | ({"enforce_eager": True} if enforce_eager else {})


def _guards(min_word_ratio: float, min_words: int, max_errors: int) -> Guards:
    try:
        return Guards(min_word_ratio, min_words, max_errors or None)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@app.command("execute")
def execute_command(
    text: Annotated[Path, typer.Option("--text", help="The document, a UTF-8 text file.")],
    program: Annotated[
        Path, typer.Option("--program", help="The program: doc calls (keep_doc/drop_doc) and/or chunk calls.")
    ],
    mode: ModeOption = Mode.STRICT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
    min_word_ratio: MinWordRatio = GUARDS.min_word_ratio,
    min_words: MinWords = GUARDS.min_words,
    max_errors: MaxErrors = GUARDS.max_errors,
) -> None:
    """Run one program on one document and print the refined text (or the whole result with --json)."""
    document = _read_text(text, "--text")
    doc_program, chunk_program = split_stages(_read_text(program, "--program"))
    result = execute(
        document,
        doc_program if doc_program.strip() else None,
        chunk_program if chunk_program.strip() else None,
        mode=mode,
        guards=_guards(min_word_ratio, min_words, max_errors),
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(result.text, nl=bool(result.text))
    for error in result.errors:
        typer.echo(f"{program}:{error.line}: {error.kind}: {error.message}", err=True)
    if result.dropped:
        typer.echo(f"dropped: {result.reason}", err=True)


@app.command("refine")
def refine_command(
    inputs: Inputs,
    output: Output,
    stages: Annotated[
        str,
        typer.Option(help="Model stages, comma-separated: doc,chunk; none re-executes the programs of earlier output."),
    ] = "doc,chunk",
    mode: ModeOption = Mode.STRICT,
    doc_model: Annotated[str, typer.Option(help="Doc-stage model: bundled name, hub id or directory.")] = (
        DEFAULT_MODELS[Stage.DOC]
    ),
    chunk_model: Annotated[str, typer.Option(help="Chunk-stage model: bundled name, hub id or directory.")] = (
        DEFAULT_MODELS[Stage.CHUNK]
    ),
    backend: BackendOption = Backend.TRANSFORMERS,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    tokenizer: TokenizerOption = None,
    device: Device = None,
    dtype: Dtype = "auto",
    request_timeout: RequestTimeout = REQUEST_TIMEOUT,
    retries: Retries = RETRIES,
    enforce_eager: EnforceEager = False,
    text_key: TextKey = RUN["text_key"],
    id_key: IdKey = RUN["id_key"],
    limit: Limit = RUN["limit"],
    batch_size: Annotated[int, typer.Option(help="Documents per model batch.")] = RUN["batch_size"],
    max_chars: Annotated[int, typer.Option(help="Drop documents longer than this (reason too_long).")] = RUN[
        "max_chars"
    ],
    doc_threshold: Annotated[
        float | None, typer.Option(help="Tagger doc model: drop a document when P(drop) >= this (default: its own).")
    ] = None,
    line_threshold: Annotated[
        float | None, typer.Option(help="Tagger chunk model: remove a line when P(remove) >= this (default: its own).")
    ] = None,
    doc_max_new_tokens: Annotated[int | None, typer.Option(help="Token limit of a doc program.")] = None,
    chunk_max_new_tokens: Annotated[int | None, typer.Option(help="Token limit of a chunk program.")] = None,
    executor: Executor = ExecutorKind.LOCAL,
    tasks: Tasks = RUN["tasks"],
    workers: Workers = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads per task (default: local cores / workers running at once).")
    ] = None,
    partition: Annotated[str | None, typer.Option(help="slurm: the partition.")] = None,
    time_limit: Annotated[str, typer.Option("--time", help="slurm: time limit per task.")] = "24:00:00",
    gpus_per_task: Annotated[int, typer.Option(help="slurm: GPUs per task (one vLLM engine each).")] = 0,
    min_word_ratio: MinWordRatio = GUARDS.min_word_ratio,
    min_words: MinWords = GUARDS.min_words,
    max_errors: MaxErrors = GUARDS.max_errors,
    progress: Progress = True,
    output_format: OutputFormat = RUN["output_format"],
    restart: Restart = False,
    retry_failed: Annotated[
        bool, typer.Option(help="Redo the documents a model stage failed on (endpoint down, bad reply).")
    ] = False,
) -> None:
    """Refine a corpus: OUT/data (kept), OUT/dropped (with reasons), OUT/failed (with errors), OUT/stats.json.

    Run the same command again to resume after an interruption."""
    from proxkit.run import RefineConfig, refine

    options = _backend_options(
        backend, base_url, api_key, tokenizer, device, dtype, request_timeout, retries, enforce_eager
    )
    slurm = {"time": time_limit, "gpus_per_task": gpus_per_task} | ({"partition": partition} if partition else {})
    names = [name.strip() for name in stages.split(",") if name.strip() not in ("", "none")]
    unknown = [name for name in names if name not in (Stage.DOC, Stage.CHUNK)]
    if unknown:
        raise typer.BadParameter(f"unknown stage {unknown[0]!r}: use doc, chunk or none", param_hint="--stages")
    try:
        config = RefineConfig(
            inputs=inputs,
            output=output,
            stages=tuple(Stage(name) for name in names),
            mode=mode,
            doc_model=doc_model,
            chunk_model=chunk_model,
            backend=backend,
            backend_options=options,
            text_key=text_key,
            id_key=id_key,
            limit=limit,
            batch_size=batch_size,
            doc_max_new_tokens=doc_max_new_tokens,
            chunk_max_new_tokens=chunk_max_new_tokens,
            guards=_guards(min_word_ratio, min_words, max_errors),
            max_chars=max_chars,
            doc_threshold=doc_threshold,
            line_threshold=line_threshold,
            executor=executor,
            tasks=tasks,
            workers=workers,
            threads=threads,
            slurm=slurm,
            progress=progress,
            output_format=output_format,
            restart=restart,
            retry_failed=retry_failed,
        )
        for stage in config.stages:
            config.model(stage)  # an unknown model name fails here, before any work
    except (ValueError, FileNotFoundError, ImportError) as error:
        raise typer.BadParameter(str(error)) from None
    _run_and_summarize(lambda: refine(config), output)


def _run_and_summarize(run, output: str) -> None:
    """Run a corpus job (refine, baseline) and print its outcome counts, or how to finish a Slurm run. Only
    errors a user can fix (`ProxError`) are reported as such; anything else is a bug and keeps its
    traceback."""
    try:
        stats = run()
    except ProxError as error:
        raise typer.BadParameter(str(error)) from None
    if stats is None:
        typer.echo(f"submitted to Slurm; run the same command again when the job is done to write {output}/stats.json")
        return
    documents = stats["documents"]
    typer.echo(
        f"{documents['in']} documents: {documents['kept']} kept, {documents['dropped']} dropped, "
        f"{documents['failed']} failed -> {output} ({stats['throughput']['documents_per_second']} docs/s)"
    )
    if stats["flops"].get("refining"):
        typer.echo(f"refining compute: {stats['flops']['refining']:.3g} FLOPs ({stats['flops']['formula']})")


@app.command("baseline")
def baseline_command(
    rules: Annotated[str, typer.Argument(help="gopher, c4, fineweb, all, or a comma-separated list.")],
    inputs: Inputs,
    output: Output,
    text_key: TextKey = RUN["text_key"],
    id_key: IdKey = RUN["id_key"],
    limit: Limit = RUN["limit"],
    executor: Executor = ExecutorKind.LOCAL,
    tasks: Tasks = RUN["tasks"],
    workers: Workers = None,
    progress: Progress = True,
    output_format: OutputFormat = RUN["output_format"],
    restart: Restart = False,
) -> None:
    """Filter a corpus with the paper's rule baselines (datatrove's Gopher, C4, FineWeb rules at their
    default thresholds): the outputs of prox refine, with the rule that dropped each document."""
    from proxkit.baselines import BaselineConfig, run_baseline

    try:
        config = BaselineConfig(
            inputs=inputs,
            output=output,
            rule_sets=rules,
            text_key=text_key,
            id_key=id_key,
            limit=limit,
            executor=executor,
            tasks=tasks,
            workers=workers,
            progress=progress,
            output_format=output_format,
            restart=restart,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    _run_and_summarize(lambda: run_baseline(config), output)


@app.command("experiment")
def experiment_command(
    pool: Annotated[list[str], typer.Argument(help="The raw documents (JSONL/Parquet files or folders).")],
    output: Output,
    benchmarks: Annotated[
        str, typer.Option(help="Evaluation data (the layout of ../shared/data/eval_benchmarks).")
    ] = "../shared/data/eval_benchmarks",
    seeds: Annotated[int, typer.Option(help="Models trained per corpus.")] = EXPERIMENT["seeds"],
    tokens: Annotated[int, typer.Option(help="Training tokens per model (the same for every corpus).")] = EXPERIMENT[
        "tokens"
    ],
    model_size: Annotated[str, typer.Option(help="tiny, small (CPU), base or gpt2 (GPU).")] = EXPERIMENT["model_size"],
    batch: Annotated[int, typer.Option(help="Sequences per step.")] = EXPERIMENT["batch"],
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = EXPERIMENT["lr"],
    eval_limit: Annotated[int, typer.Option(help="Items per zero-shot task (0: all).")] = EXPERIMENT["eval_limit"],
    wikitext_pages: Annotated[int, typer.Option(help="WikiText-2 test articles for perplexity (0: all).")] = EXPERIMENT[
        "wikitext_pages"
    ],
    limit: Annotated[int, typer.Option(help="Documents read from the pool (-1: all).")] = EXPERIMENT["limit"],
    text_key: TextKey = RUN["text_key"],
    id_key: IdKey = RUN["id_key"],
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = EXPERIMENT["device"],
    doc_model: Annotated[str, typer.Option(help="Doc-stage refiner.")] = DEFAULT_MODELS[Stage.DOC],
    chunk_model: Annotated[str, typer.Option(help="Chunk-stage refiner.")] = DEFAULT_MODELS[Stage.CHUNK],
) -> None:
    """Raw vs rules vs ProX: build the three corpora from one pool, pre-train the same small model on each
    (equal tokens and steps, several seeds), evaluate with lm-eval, print the table (OUT/results.md) and
    plot it (OUT/results.png). Rerun the same command to resume."""
    try:
        from proxkit.experiment.comparison import run_experiment
        from proxkit.experiment.tables import markdown
    except ImportError as error:
        raise typer.BadParameter(f"prox experiment needs: pip install 'proxkit[experiment]' ({error})") from None
    try:
        config = ExperimentConfig(
            pool=pool,
            output=output,
            benchmarks=benchmarks,
            seeds=seeds,
            tokens=tokens,
            model_size=model_size,
            batch=batch,
            lr=lr,
            eval_limit=eval_limit,
            wikitext_pages=wikitext_pages,
            limit=limit,
            text_key=text_key,
            id_key=id_key,
            device=device,
            refine={"doc_model": doc_model, "chunk_model": chunk_model},
        )
        summary = run_experiment(config)
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(markdown(summary))


@app.command("report")
def report_command(
    run: Annotated[Path, typer.Argument(help="The output folder of prox refine or prox baseline.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The HTML file (default RUN/report.html).")
    ] = None,
    max_documents: Annotated[int, typer.Option(help="Documents shown per outcome (kept, dropped, failed).")] = 100,
) -> None:
    """A static HTML report of a run: summary numbers, plots (token retention, calls by type, removed lines
    per document, drop reasons) and documents before/after, removed lines struck through, edits marked."""
    from proxkit.report import build_report

    try:
        path = build_report(run, output, max_documents=max_documents)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="RUN") from None
    typer.echo(f"report written to {path}")


@app.command("serve")
def serve_command(
    model: Annotated[str, typer.Option(help="A model directory or hub id.")],
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port (0: any free port).")] = 8000,
    device: Device = None,
    dtype: Dtype = "auto",
    max_batch: Annotated[int, typer.Option(help="Requests batched per forward pass.")] = 16,
) -> None:
    """Serve a refining model over an OpenAI-compatible completions API (POST /v1/completions)."""
    from proxkit.models.registry import RELEASED
    from proxkit.models.server import make_server

    try:
        spec = resolve(model, RELEASED.get(model, Stage.CHUNK), Backend.TRANSFORMERS, device=device, dtype=dtype)
        tokenizer = spec.load_tokenizer()
        writer = spec.load_writer(tokenizer)
    except (ValueError, OSError) as error:
        raise typer.BadParameter(str(error), param_hint="--model") from None
    server = make_server(writer, tokenizer, model, host, port, max_batch)
    typer.echo(f"serving {model} on http://{server.server_address[0]}:{server.server_address[1]}/v1", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


train_app = typer.Typer(help="Train refining models from seed annotations.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("tagger")
def train_tagger_command(
    seed: Annotated[Path, typer.Option(help="Seed examples (JSONL from the importers or prox annotate).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the tagger directory.")],
    base: Annotated[str, typer.Option(help="Backbone: smollm2-135m or a model directory.")] = "smollm2-135m",
    depth: Annotated[int, typer.Option(help="Backbone layers run.")] = 4,
    layers: Annotated[
        str | None,
        typer.Option(help="Hidden states read, comma-separated (0: embeddings; default: depth/2 and depth)."),
    ] = None,
    max_pages: Annotated[
        int, typer.Option(help="Chunk pages used, sampled evenly over collections (0: all).")
    ] = PLAN.max_pages,
    states: Annotated[Path, typer.Option(help="Cache of line states (reused across runs).")] = Path(
        ".cache/tagger-states"
    ),
    folds: Annotated[int, typer.Option(help="Cross-validation folds, split by site (0: skip).")] = PLAN.folds,
    leave_collection_out: Annotated[
        bool,
        typer.Option(help="Cross-validate leaving one collection out per fold instead of by site (--folds > 0)."),
    ] = PLAN.leave_collection_out,
    epochs: Annotated[int, typer.Option(help="Passes over the training pages.")] = PLAN.epochs,
    surface: Annotated[
        bool, typer.Option(help="The heads also read surface features of each line's text (length, punctuation…).")
    ] = False,
    attention: Annotated[
        bool,
        typer.Option(help="The line head also attends over all lines of a chunk (line order: from --surface)."),
    ] = False,
    recurrent: Annotated[
        bool, typer.Option(help="The line head also reads a bidirectional GRU over the lines (slower to train).")
    ] = False,
    chunk_budget: Annotated[
        int,
        typer.Option(
            min=0,
            help="Tokens of a page per chunk, in training and when the tagger refines (0: a whole page at once).",
        ),
    ] = CHUNK_TOKEN_BUDGET,
    jobs: Annotated[
        int, typer.Option(min=1, help="Processes training the folds and the final heads at once.")
    ] = PLAN.jobs,
    extract_only: Annotated[bool, typer.Option(help="Only compute and cache the line states.")] = PLAN.extract_only,
    device: Annotated[
        str | None,
        typer.Option(help="Where the backbone computes line states: cpu, cuda, cuda:1 (default: a GPU if any)."),
    ] = PLAN.device,
    dtype: StatesDtype = PLAN.dtype,
    clean_copies: Annotated[
        bool,
        typer.Option(help="Also train on each page's gold alone, every line content: text already cleaned once."),
    ] = PLAN.clean_copies,
    doc_statistics: Annotated[
        bool, typer.Option(help="The doc probe also reads statistics of the text (punctuation, function words…).")
    ] = False,
    plain_markup: Annotated[
        bool, typer.Option(help="Read Markdown as the text it marks up (links as their text, no images…).")
    ] = True,
    only_collection: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this collection's leave-one-out fold (repeatable): no final heads, the folds' report "
            "in OUT/folds.json."
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="With --extract-only, compute only share K/N of the line states (K from 0), so N processes or "
            "machines fill one --states cache; then run without it to train."
        ),
    ] = None,
    also_rendering: Annotated[
        list[str] | None,
        typer.Option(
            help="The pages drawn by --max-pages also in this rendering (repeatable; trained, validated and "
            "tested on like the others): it joins them without being drawn, so the draw stays that of the other "
            "renderings."
        ),
    ] = None,
) -> None:
    """Train the line tagger (LM backbone + small heads): cross-validate by site, then write the model."""
    from proxkit.models.tagger import DepthError, LayersError, TaggerConfig
    from proxkit.train import tagger
    from proxkit.train.seed import load_seed

    try:
        share = parse_shard(shard) if shard is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--shard") from None
    if share and not extract_only:
        raise typer.BadParameter("needs --extract-only (a share of the states trains nothing)", param_hint="--shard")
    examples = load_seed(seed)
    try:
        chosen = [int(layer) for layer in layers.split(",")] if layers else None
    except ValueError:
        raise typer.BadParameter(f"{layers!r} is not a comma-separated list of layers", param_hint="--layers") from None
    try:
        options = {
            "surface": surface,
            "attention": attention,
            "recurrent": recurrent,
            "chunk_budget": chunk_budget,
            "doc_statistics": doc_statistics,
            "plain_markup": plain_markup,
        }
        config = TaggerConfig.for_base(base, depth, chosen, **options)
    except OSError as error:  # transformers: no such directory, or a hub that cannot be reached
        raise typer.BadParameter(f"cannot load {base}: {error}", param_hint="--base") from None
    except DepthError as error:
        raise typer.BadParameter(str(error), param_hint="--depth") from None
    except LayersError as error:
        raise typer.BadParameter(str(error), param_hint="--layers") from None
    only = tuple(only_collection or ())
    extra = tuple(also_rendering or ())
    unknown = sorted(set(extra) - {example.rendering for example in examples})
    if unknown:
        raise typer.BadParameter(f"{seed} holds no example in {', '.join(unknown)}", param_hint="--also-rendering")
    plan = TrainingPlan(
        max_pages=max_pages,
        folds=folds,
        epochs=epochs,
        jobs=jobs,
        leave_collection_out=leave_collection_out,
        extract_only=extract_only,
        device=device,
        dtype=dtype,
        clean_copies=clean_copies,
        only_collections=only,
        shard=share,
        also_renderings=extra,
    )
    try:
        report = tagger.train_and_validate(examples, config, output, states, plan)
    except tagger.UnknownCollections as error:
        raise typer.BadParameter(str(error), param_hint="--only-collection") from None
    if report is None:
        return
    typer.echo(json.dumps(report, indent=2))


def _tagger_directory(name: str, stage: Stage) -> Path:
    """The directory of the tagger `name` resolves to, or a ValueError when it is no tagger."""
    directory = resolve(name, stage).tagger_directory
    if directory is None:
        raise ValueError(f"{name} is not a tagger directory")
    return Path(directory)


@train_app.command("doc-probe")
def train_doc_probe_command(
    seed: Annotated[Path, typer.Option(help="Seed examples (JSONL) with DCLM and page-typed (WCXB) doc examples.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the tagger directory.")],
    tagger: Annotated[str, typer.Option(help="The tagger whose doc probe is refitted.")] = "proxkit/web-doc-tagger",
    states: Annotated[Path, typer.Option(help="Cache of line states (reused across runs).")] = Path(
        ".cache/tagger-states"
    ),
    dtype: StatesDtype = PLAN.dtype,
    statistics: Annotated[
        bool, typer.Option(help="The probe also reads statistics of the text (punctuation, function words…).")
    ] = True,
    all_renderings: Annotated[
        bool, typer.Option(help="Learn from every rendering of the labelled pages, not only the first.")
    ] = True,
    piece_words: Annotated[
        int, typer.Option(min=0, help="Read a document's long lines in pieces of at most this many words (0: whole).")
    ] = 0,
    pieces_above: Annotated[
        int, typer.Option(min=0, help="With --piece-words, cut only lines longer than this many words (0: all).")
    ] = 0,
) -> None:
    """Refit a tagger's doc probe on DCLM and WCXB documents (line head unchanged); validate; write it."""
    from proxkit.train.doc_probe import refit_doc_probe
    from proxkit.train.seed import load_seed

    if pieces_above and not piece_words:
        raise typer.BadParameter("cuts only lines into pieces, so it needs --piece-words", param_hint="--pieces-above")
    try:
        directory = _tagger_directory(tagger, Stage.DOC)
        options = {"statistics": statistics, "renderings": all_renderings}
        options |= {"piece_words": piece_words or None, "pieces_above": pieces_above or None}
        report = refit_doc_probe(directory, load_seed(seed), states, output, dtype, **options)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(json.dumps(report, indent=2))


@train_app.command("word-head")
def train_word_head_command(
    seed: Annotated[Path, typer.Option(help="Seed examples (JSONL) with chunk pages and their gold.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the tagger directory.")],
    tagger: Annotated[str, typer.Option(help="The tagger that gets the word head.")] = "proxkit/web-chunk-tagger",
    max_pages: Annotated[int, typer.Option(help="Chunk pages sampled, fair across collections (0: all).")] = 0,
    leave_collection_out: Annotated[
        bool, typer.Option(help="First validate with one fold per collection, left out whole.")
    ] = False,
) -> None:
    """Give a tagger a word head: it marks noise inside kept lines, written as normalize calls (line head
    and backbone unchanged); validated by held-out sites (and collections); write it."""
    from proxkit.train.seed import load_seed
    from proxkit.train.word_head import train_and_validate_word_head

    try:
        directory = _tagger_directory(tagger, Stage.CHUNK)
        examples = load_seed(seed)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    report = train_and_validate_word_head(examples, directory, output, max_pages, leave_collection_out)
    typer.echo(json.dumps(report, indent=2))


SeedOption = Annotated[Path, typer.Option(help="Seed examples (JSONL).")]
TrainOutput = Annotated[Path, typer.Option("--output", "-o", help="Training folder (best/ is the model).")]
BaseOption = Annotated[str, typer.Option(help="smollm2-135m, a model directory or a hub id.")]
EpochsOption = Annotated[int, typer.Option(help="Passes over the training examples.")]
LrOption = Annotated[float, typer.Option(help="Peak learning rate (cosine schedule to a tenth of it).")]
BatchOption = Annotated[int, typer.Option(help="Examples per step.")]
LoraOption = Annotated[int, typer.Option(help="LoRA rank (0: full fine-tuning).")]
MaxExamplesOption = Annotated[int, typer.Option(help="Train on at most this many examples (0: all).")]
MaxValidationOption = Annotated[
    int, typer.Option(help="Validate on at most this many held-out examples (0: all); `prox evaluate --held-out`.")
]


def _generative_trainer(stage: Stage, summary: str):
    """The `prox train doc` / `prox train chunk` command: the same options, one stage each."""

    def command(
        seed: SeedOption,
        output: TrainOutput,
        base: BaseOption = "smollm2-135m",
        epochs: EpochsOption = 3,
        lr: LrOption = 1e-4,
        batch_size: BatchOption = 8,
        lora_rank: LoraOption = 0,
        max_examples: MaxExamplesOption = 0,
        max_validation: MaxValidationOption = 0,
    ) -> None:
        _train_generative(stage, seed, output, base, epochs, lr, batch_size, lora_rank, max_examples, max_validation)

    command.__doc__ = summary
    return command


train_app.command("doc")(
    _generative_trainer(Stage.DOC, "Fine-tune a generative doc refiner (prompt → keep_doc()/drop_doc()); resumable.")
)
train_app.command("chunk")(
    _generative_trainer(
        Stage.CHUNK, "Fine-tune a generative chunk refiner (numbered lines → remove_lines/keep_chunk); resumable."
    )
)


def _train_generative(
    stage: Stage, seed: Path, output: Path, base: str, epochs: int, lr: float, batch_size: int, lora_rank: int,
    max_examples: int, max_validation: int,
) -> None:  # fmt: skip
    from proxkit.train import sft
    from proxkit.train.seed import load_seed

    config = sft.SFTConfig(str(stage), base, epochs, lr, batch_size, lora_rank)

    def warn(message: str) -> None:
        typer.echo(f"warning: {message}", err=True)

    state = sft.train_generative(load_seed(seed), config, output, max_examples, max_validation, warn)
    typer.echo(json.dumps(state, indent=2))


@app.command("annotate")
def annotate_command(
    inputs: Annotated[list[Path], typer.Argument(help="JSONL files of documents to annotate (field --text-key).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Seed examples to write (JSONL).")],
    base_url: Annotated[str, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")],
    model: Annotated[str, typer.Option(help="The model name the endpoint serves.")],
    api_key: Annotated[str | None, typer.Option(envvar="OPENAI_API_KEY", help="The API key.")] = None,
    text_key: TextKey = RUN["text_key"],
    id_key: IdKey = RUN["id_key"],
    limit: Annotated[int, typer.Option(help="Annotate at most this many documents (0: all).")] = 0,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = ANNOTATE["concurrency"],
    max_removed: Annotated[
        float, typer.Option(help="Drop a chunk's removals above this share of its lines.")
    ] = ANNOTATE["max_removed"],
    rewrite: Annotated[
        bool,
        typer.Option(
            help="Chunk labels from a cleaned copy of each chunk: only the deletions it implies are kept "
            '(remove_lines, normalize to ""), never text the model invented or moved.'
        ),
    ] = ANNOTATE["rewrite"],
) -> None:
    """Label documents with an LLM the ProX way (edu + format scores, three chunk prompts, or with --rewrite
    a cleaned copy); resumable: answers are cached next to the output."""
    from proxkit.annotate.llm import annotate_corpus

    config = AnnotateConfig(base_url, model, api_key, concurrency, max_removed=max_removed, rewrite=rewrite)
    counts = annotate_corpus(config, [str(path) for path in inputs], output, text_key, id_key, limit)
    typer.echo(json.dumps(counts))


@app.command("evaluate")
def evaluate_command(
    stage: Annotated[Stage, typer.Argument(help="doc or chunk.")],
    model: Annotated[str, typer.Option(help="The refiner: bundled name, hub id or directory.")],
    data: Annotated[Path, typer.Option(help="Labelled seed examples (JSONL).")],
    backend: BackendOption = Backend.TRANSFORMERS,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    tokenizer: TokenizerOption = None,
    device: Device = None,
    dtype: Dtype = "auto",
    mode: ModeOption = Mode.STRICT,
    limit: Annotated[int, typer.Option(help="Evaluate at most this many examples (0: all).")] = 0,
    held_out: Annotated[
        bool, typer.Option(help="Only the held-out sites `prox train` keeps out of training (sampled by --limit).")
    ] = False,
    collection: Annotated[
        list[str] | None, typer.Option(help="Only examples of this collection (repeatable): e.g. wcxb, big9-chaos.")
    ] = None,
    by: Annotated[
        str, typer.Option(help="Also report per group: comma-separated of collection, rendering, language, page_type.")
    ] = "",
    clean_text: Annotated[
        bool,
        typer.Option(
            help="Each chunk page's gold alone (text already cleaned): chunk: refine it (words_kept should be ~1); "
            "doc: judge those with >= 100 words, all labelled keep."
        ),
    ] = False,
    full_pages: Annotated[
        bool,
        typer.Option(
            help="doc: judge each chunk page in each of its renderings (a page is a keep with >= 100 content "
            "words, a drop with none): how the doc stage fares on each extractor's text (--by rendering)."
        ),
    ] = False,
    pages_per_collection: Annotated[
        int,
        typer.Option(
            min=0,
            help="At most this many pages of each collection, each in every rendering the data holds: "
            "extractors compared on the same pages (0: all).",
        ),
    ] = 0,
    rendering: Annotated[
        list[str] | None,
        typer.Option(
            help="Only examples in this rendering (repeatable), kept after the pages are drawn (--limit counts "
            "every rendering): the same pages as a run over all renderings."
        ),
    ] = None,
) -> None:
    """Score a refiner on labelled examples next to the rule baselines: doc accuracy and keep-F1; chunk
    removed-line F1, kept-line F1 and content-word F1 (prints JSON)."""
    from proxkit.train import evaluate
    from proxkit.train.seed import load_seed
    from proxkit.train.split import held_out_split, sample_pages, sample_sources

    try:
        spec = resolve(model, stage, backend, **_backend_options(backend, base_url, api_key, tokenizer, device, dtype))
        if full_pages and (stage is Stage.CHUNK or clean_text):
            raise ValueError("--full-pages judges the doc stage on chunk pages: give it doc, without --clean-text")
        if pages_per_collection and limit:
            raise ValueError("--pages-per-collection draws whole pages, each in every rendering: not with --limit")
        read = Stage.CHUNK if clean_text or full_pages else stage  # both are made of the chunk pages
        examples = [e for e in load_seed(data) if e.stage == read and (not collection or e.collection in collection)]
        groups = [field.strip() for field in by.split(",") if field.strip()]
        evaluate.check_groupings(groups)
    except (ValueError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error)) from None
    if held_out:  # the same pages as `prox train ... --max-validation LIMIT` validates on
        examples = sample_pages(held_out_split(examples)[1], limit)
    if pages_per_collection:
        examples = sample_sources(examples, pages_per_collection)
    examples = examples[:limit] if limit else examples
    examples = [e for e in examples if e.rendering in rendering] if rendering else examples
    if clean_text:
        examples = (evaluate.clean_text_pages if stage is Stage.CHUNK else evaluate.clean_text_documents)(examples)
    if full_pages:
        examples = evaluate.full_page_documents(examples)
    if not examples:
        what = "chunk pages with a gold (of >= 100 words for doc)" if clean_text else f"{stage}-stage examples"
        what = "chunk pages with no content or >= 100 words of it" if full_pages else what
        what += f" in {', '.join(rendering)} (of those drawn)" if rendering else ""
        raise typer.BadParameter(f"{data} holds no {what}")
    scorer = evaluate.evaluate_doc if stage is Stage.DOC else evaluate.evaluate_chunk
    typer.echo(json.dumps(scorer(spec, examples, mode, groups), indent=2))
