"""The refining pipeline as datatrove steps: InputGuard → DocRefiner → ChunkRefiner → ProgramExecutor →
OutcomeWriter.

The guard drops empty and over-long documents first. The model steps only *write* programs (into
`metadata.doc_program` / `metadata.chunk_program`); the executor applies them, purely, so a run can be
re-executed with other guards without a model. Each step streams its input in batches of documents, so
memory stays bounded whatever the corpus size. Every document carries its status (kept / dropped /
failed, see `outcome`) and the last step routes it.
"""

from proxkit.stages.cache import MODEL_FAILURES, ProgramCache, document_key, model_failure
from proxkit.stages.executing import PendingStep, ProgramExecutor
from proxkit.stages.outputs import PARQUET_COLUMNS, OutcomeWriter, Totals, iter_output_records, read_output_file
from proxkit.stages.refining import DEFAULT_MAX_CHARS, ChunkRefiner, DocRefiner, InputGuard

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MODEL_FAILURES",
    "PARQUET_COLUMNS",
    "ChunkRefiner",
    "DocRefiner",
    "InputGuard",
    "OutcomeWriter",
    "PendingStep",
    "ProgramCache",
    "ProgramExecutor",
    "Totals",
    "document_key",
    "iter_output_records",
    "model_failure",
    "read_output_file",
]
