"""Where documents end: OutcomeWriter routes each by its status to data/, dropped/ or failed/ (JSONL or
Parquet) and writes the task's totals (Totals); iter_output_records reads an output folder back."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers import JsonlWriter

from proxkit.errors import OptionError
from proxkit.outcome import Status, prox_metadata, status
from proxkit.records import OUTPUT_FORMATS, SUMMED_EXECUTION_STATS


class OutcomeWriter(PipelineStep):
    """Writes each document where its status says — `folder/data`, `folder/dropped`, `folder/failed` — and
    this task's totals to `folder/logs/prox/{rank:05d}.json`. A task that runs again (after a crash)
    first removes the files an earlier attempt of it left, so none of its records is written twice."""

    type = "💾 - WRITER"
    name = "💾 OutcomeWriter"

    def __init__(
        self, folder: str, *, compression: str | None = "gzip", progress: bool = True, output_format: str = "jsonl"
    ) -> None:
        """output_format: "jsonl" (gzip-compressed by default) or "parquet" (one string column per field,
        `metadata` as JSON text, so records with different metadata share one schema)."""
        super().__init__()
        if output_format not in OUTPUT_FORMATS:
            raise OptionError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
        self.folder = folder.rstrip("/")
        self.compression = compression
        self.progress = progress
        self.output_format = output_format

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from tqdm import tqdm

        self.remove_earlier_files(rank)
        writers = {
            status: self._writer(f"{self.folder}/{place}")
            for status, place in ((Status.KEPT, "data"), (Status.DROPPED, "dropped"), (Status.FAILED, "failed"))
        }
        totals = Totals()
        started = time.monotonic()
        with tqdm(desc=f"refine task {rank}", unit="doc", disable=not self.progress, mininterval=1) as progress:
            for document in data or []:
                totals.add(document)
                writers[status(document)].write(document, rank)
                progress.update()
        for writer in writers.values():
            writer.close()
        totals.counts["task_seconds"] = round(time.monotonic() - started, 3)
        totals.save(f"{self.folder}/logs/prox/{rank:05d}.json")
        return
        yield  # a generator that yields nothing: the end of the pipeline

    def _writer(self, folder: str):
        if self.output_format == "jsonl":
            return JsonlWriter(folder, compression=self.compression, adapter=_output_record)
        import pyarrow as pa
        from datatrove.pipeline.writers import ParquetWriter

        schema = pa.schema([(name, pa.string()) for name in PARQUET_COLUMNS])
        return ParquetWriter(folder, adapter=_parquet_record, schema=schema)

    def remove_earlier_files(self, rank: int) -> None:
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.folder)
        for place in ("data", "dropped", "failed"):
            for path in fs.glob(f"{root}/{place}/{rank:05d}.*"):
                fs.rm(path)


PARQUET_COLUMNS = ("id", "text", "raw_content", "doc_content", "metadata")


def _parquet_record(writer, document: Document) -> dict:
    record = _output_record(writer, document)
    return {name: record.get(name) for name in PARQUET_COLUMNS} | {"metadata": json.dumps(record["metadata"])}


def iter_output_records(folder: Path) -> Iterator[dict]:
    """The records of every output file in a local output subfolder (data, dropped or failed), in file order."""
    for path in sorted([*folder.glob("*.jsonl*"), *folder.glob("*.parquet")]):
        yield from read_output_file(str(path))


def read_output_file(path: str) -> Iterator[dict]:
    """The records of one output file (JSONL, gzip-compressed or not, or Parquet), as written."""
    import fsspec

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as file:
            rows = pq.read_table(file).to_pylist()
        for row in rows:
            row["metadata"] = json.loads(row["metadata"])
            yield {key: value for key, value in row.items() if value is not None}
        return
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)


def _output_record(_writer, document: Document) -> dict:
    """The published ProX record: `id`, `text`, `raw_content`, `doc_content`, then `metadata` (with both
    program fields, None where a stage did not run). Values JSON cannot hold are written as text."""
    metadata = {"doc_program": None, "chunk_program": None} | _json_safe(document.metadata)
    record = {"id": document.id, "text": document.text}
    for field in ("raw_content", "doc_content"):
        if field in metadata:
            record[field] = metadata.pop(field)
    record["metadata"] = metadata
    return record


def _json_safe(value):
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class Totals:
    """The counts stats.json reports, gathered from each document's `metadata.prox` (`records.ProxRecord`)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.drop_reasons: Counter = Counter()
        self.calls: Counter = Counter()
        self.errors: Counter = Counter()

    def add(self, document: Document) -> None:
        prox = prox_metadata(document)
        outcome = status(document)
        self.counts["documents_in"] += 1
        self.counts[f"documents_{outcome}"] += 1
        if outcome is Status.DROPPED:
            self.drop_reasons[prox.get("drop_reason", "unknown")] += 1
        for name, value in prox.get("doc_stage", {}).items():
            self.counts[f"doc_stage_{name}"] += int(value)
        if "doc_stage" in prox and prox.get("drop_reason") != "doc_program":  # D_doc of the FLOPs formula
            self.counts["doc_tokens"] += prox["doc_stage"]["raw_tokens"]
        for name, value in prox.get("chunk_stage", {}).items():
            self.counts[f"chunk_stage_{name}"] += int(value)
        stats = prox.get("stats", {})
        for name in SUMMED_EXECUTION_STATS:
            self.counts[name] += stats.get(name, 0)
        self.counts["programs_ignored"] += int(stats.get("program_ignored", False))
        self.calls.update(stats.get("calls", {}))
        self.errors.update(error["kind"] for error in prox.get("errors", []))

    def as_dict(self) -> dict:
        return {
            "counts": dict(self.counts),
            "drop_reasons": dict(self.drop_reasons),
            "calls": dict(self.calls),
            "errors": dict(self.errors),
        }

    def save(self, path: str) -> None:
        import fsspec

        with fsspec.open(path, "w", auto_mkdir=True) as file:
            json.dump(self.as_dict(), file, indent=2)
