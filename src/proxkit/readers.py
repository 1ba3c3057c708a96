"""Read input records so that every one of them becomes a Document — a bad record included.

datatrove's readers skip a malformed line with a warning and stop reading a file at the first invalid
UTF-8 byte; here such a record becomes a Document marked failed, naming file, line and field, so it is
counted and written to OUT/failed. Inputs: JSONL (.gz/.zst/.bz2) and Parquet, local paths or fsspec URLs.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader

from proxkit.outcome import mark_failed

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.bz2", ".json.gz", ".parquet")


def expand_inputs(inputs: list[str]) -> list[str]:
    """Every input file, in a stable order: files as given, folders searched recursively for SUFFIXES."""
    import fsspec

    files: list[str] = []
    for entry in inputs:
        fs, path = fsspec.core.url_to_fs(entry)
        protocol = "" if fs.protocol in ("file", ("file", "local")) else f"{entry.split('://')[0]}://"
        if fs.isdir(path):
            found = sorted(p for p in fs.find(path) if p.endswith(SUFFIXES) and not _is_bookkeeping(p, path))
            if not found:
                raise FileNotFoundError(f"{entry}: no input files ({', '.join(SUFFIXES)}) in this folder")
            files.extend(protocol + p if protocol else p for p in found)
        elif fs.isfile(path):
            files.append(entry)
        else:
            raise FileNotFoundError(f"{entry}: no such file or folder")
    return files


def _is_bookkeeping(path: str, root: str) -> bool:
    """Files of a proxkit output folder that are not records: its program cache and logs."""
    parts = path[len(root) :].strip("/").split("/")
    return parts[0] in ("cache", "logs")


class RecordReader(BaseReader):
    """Reads this task's share of `files` (file i goes to task i mod world_size).

    text_key / id_key: the fields holding the text and the id (default "text" and "id"); a record
    without an id gets "FILE:LINE". Every other field is kept in metadata.
    """

    name = "📖 proxkit records"

    def __init__(self, files: list[str], text_key: str = "text", id_key: str = "id", limit: int = -1) -> None:
        super().__init__(limit=limit, text_key=text_key, id_key=id_key)
        self.files = files

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        count = 0
        for path in self.files[rank::world_size]:
            for document in self._read(path):
                if count == self.limit:
                    return
                count += 1
                self.stat_update("documents")
                yield document

    def _read(self, path: str) -> Iterator[Document]:
        """The records of one file; a file that breaks off (corrupt or truncated) ends in a failed record."""
        read = self._read_parquet if path.endswith(".parquet") else self._read_jsonl
        records = 0
        try:
            for document in read(path):
                records += 1
                yield document
        except (OSError, EOFError, ValueError) as error:  # gzip/zstd/parquet errors are among these
            problem = f"{path}: unreadable after record {records} ({type(error).__name__}: {error})"
            yield mark_failed(Document("", f"{path}:unreadable"), problem)

    def _read_jsonl(self, path: str) -> Iterator[Document]:
        import fsspec

        with fsspec.open(path, "rb", compression="infer") as file:
            for number, raw in enumerate(io.BufferedReader(file), start=1):  # zstd streams need the buffer
                if not raw.strip():
                    continue  # a blank line is not a record
                where = f"{path}:{number}"
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError as error:
                    bad_byte = _first_bad_utf8_byte(raw)
                    problem = f"invalid JSON ({error})" if bad_byte is None else f"invalid UTF-8 at byte {bad_byte}"
                    document = Document(raw.decode("utf-8", "replace"), where)
                    yield mark_failed(document, f"{where}: {problem}")
                    continue
                yield self._document(record, where)

    def _read_parquet(self, path: str) -> Iterator[Document]:
        import fsspec
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as file:
            row = 0
            for batch in pq.ParquetFile(file).iter_batches(batch_size=1024):
                for record in batch.to_pylist():
                    yield self._document(record, f"{path}:row {row}")
                    row += 1

    def _document(self, record: object, where: str) -> Document:
        """A record as a Document; without an id field, its id is where it was read (FILE:LINE)."""
        if not isinstance(record, dict):
            document = Document(str(record)[:1000], where)
            return mark_failed(document, f"{where}: a record must be a JSON object, got {type(record).__name__}")
        text = record.pop(self.text_key, None)
        raw_id = record.pop(self.id_key, None)
        metadata = record.pop("metadata", None)
        metadata = (metadata if isinstance(metadata, dict) else {"metadata": metadata}) if metadata else {}
        metadata.pop("prox", None)  # proxkit's own bookkeeping from an earlier run is recomputed
        document = Document("", str(raw_id) if raw_id is not None else where, metadata=metadata | record)
        if text is None:
            fields = ", ".join(sorted(record)) or "none"
            return mark_failed(document, f"{where}: no {self.text_key!r} field (fields: {fields}); see --text-key")
        if not isinstance(text, str):
            return mark_failed(document, f"{where}: field {self.text_key!r} is {type(text).__name__}, not text")
        document.text = text
        return document


def _first_bad_utf8_byte(raw: bytes) -> int | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return None
