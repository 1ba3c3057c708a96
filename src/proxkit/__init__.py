"""proxkit: refine pre-training data by programming every example (ProX, arXiv 2409.17115).

From Python: `proxkit.refine(inputs, output, **options)` runs `prox refine`; the steps of
`proxkit.stages` (`DocRefiner("proxkit/web-doc-tagger")`, `ChunkRefiner(...)`, `ProgramExecutor()`) drop
into any datatrove pipeline.
"""

__version__ = "0.1.0"


def refine(inputs: str | list[str], output: str, **options) -> dict | None:
    """`prox refine` from Python: `options` are the fields of `proxkit.run.RefineConfig` (stages, mode,
    doc_model, chunk_model, tasks, ...). Returns the stats written to OUTPUT/stats.json."""
    from proxkit.run import RefineConfig
    from proxkit.run import refine as run_refine

    return run_refine(
        RefineConfig(inputs=[inputs] if isinstance(inputs, str) else list(inputs), output=output, **options)
    )
