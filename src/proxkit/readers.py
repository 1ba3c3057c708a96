"""Read input records so that every one of them becomes a Document — a bad record included.

datatrove's readers skip a malformed line with a warning and stop reading a file at the first invalid
UTF-8 byte; here such a record becomes a Document marked failed, naming file, line and field, so it is
counted and written to OUT/failed, and a compressed file that ends early (gzip, bz2, xz, zstd) ends in a
failed record naming the last good one. Inputs: JSON lines (.jsonl, .ndjson, .json; uncompressed or
.gz/.zst/.bz2/.xz; lines end in LF, CRLF or CR; a UTF-8 BOM is skipped), a .json file holding one array
of records, and Parquet; local paths or fsspec URLs. A record's own `prox` field is kept as
`metadata.input_prox`: `metadata.prox` is proxkit's alone.
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Iterable, Iterator

import orjson
import zstandard
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader
from loguru import logger

from proxkit.errors import InputError
from proxkit.outcome import mark_failed

COMPRESSIONS = ("", ".gz", ".zst", ".bz2", ".xz")
SUFFIXES = (*(base + c for base in (".jsonl", ".ndjson", ".json") for c in COMPRESSIONS), ".parquet")
_TRUNCATED = (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError)  # what a broken file raises
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 16


def expand_inputs(inputs: list[str]) -> list[str]:
    """Every input file, in a stable order: files as given, folders searched recursively for SUFFIXES.
    Inside a folder, a proxkit output's own cache/ and logs/ are skipped; each file skipped is logged."""
    import fsspec

    files: list[str] = []
    for entry in inputs:
        fs, path = fsspec.core.url_to_fs(entry)
        protocol = "" if fs.protocol in ("file", ("file", "local")) else f"{entry.split('://')[0]}://"
        if fs.isdir(path):
            found = _record_files(sorted(fs.find(path)))
            if not found:
                raise InputError(f"{entry}: no input files ({', '.join(SUFFIXES)}) in this folder")
            files.extend(protocol + p if protocol else p for p in found)
        elif fs.isfile(path):
            files.append(entry)
        else:
            raise InputError(f"{entry}: no such file or folder")
    return files


def _record_files(paths: list[str]) -> list[str]:
    """The files of a folder that hold records, logging why each other one is skipped."""
    outputs = {path.split("/logs/prox/")[0] for path in paths if "/logs/prox/" in path}  # proxkit output folders
    bookkeeping = tuple(f"{root}/{place}/" for root in outputs for place in ("cache", "logs"))
    found = []
    for path in paths:
        if bookkeeping and path.startswith(bookkeeping):
            logger.info(f"skipping {path}: the bookkeeping of a proxkit output folder")
        elif not path.endswith(SUFFIXES):
            logger.warning(f"skipping {path}: not a record file ({', '.join(SUFFIXES)})")
        else:
            found.append(path)
    return found


def _zstd_chunks(file) -> Iterator[bytes]:
    """The decompressed bytes of a zstd file, frame after frame; EOFError when it ends inside a frame
    (the zstd library reads a cut-off stream as a shorter one)."""
    decompressor = zstandard.ZstdDecompressor()
    frame, inside = decompressor.decompressobj(), False
    while raw := file.read(_CHUNK):
        while raw:
            inside = True
            if out := frame.decompress(raw):
                yield out
            raw = b""
            if frame.eof:
                raw, inside = frame.unused_data, False
                frame = decompressor.decompressobj()
    if inside:
        raise EOFError("the zstd stream ends inside a frame (the file is cut off)")


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines split at LF, CRLF or a lone CR (JSON holds no raw CR or LF inside a string), a UTF-8 BOM at
    the start skipped. Blank lines are kept, so line numbers stay true."""
    pending, first = b"", True
    for chunk in chunks:
        if first:
            chunk, first = chunk.removeprefix(_BOM), False
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            yield from _split_cr(line)
    if pending:
        yield from _split_cr(pending)


def _split_cr(line: bytes) -> list[bytes]:
    return line.removesuffix(b"\r").split(b"\r") if b"\r" in line else [line]


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
        records, last = 0, None
        try:
            for document in read(path):
                records, last = records + 1, document.id
                yield document
        except _TRUNCATED as error:
            where = f"after record {records} (id {last})" if records else "from its first record"
            problem = f"{path}: unreadable {where}: {type(error).__name__}: {error}"
            yield mark_failed(Document("", f"{path}:unreadable"), problem)

    def _read_jsonl(self, path: str) -> Iterator[Document]:
        import fsspec

        zstd = path.endswith(".zst")
        with fsspec.open(path, "rb", compression=None if zstd else "infer") as file:
            read = getattr(file, "read1", file.read)  # read1: what was decompressed before a cut is not lost
            chunks = _zstd_chunks(file) if zstd else iter(lambda: read(_CHUNK), b"")
            lines = _lines(chunks)
            for number, raw in enumerate(lines, start=1):
                if number == 1 and raw.lstrip().startswith(b"[") and _may_hold_an_array(path):
                    yield from self._read_json_array(path, b"\n".join([raw, *lines]))
                    return
                if not raw.strip():
                    continue  # a blank line is not a record
                where = f"{path}:{number}"
                try:
                    record = orjson.loads(raw)
                    if isinstance(record, dict) and isinstance(record.get(self.id_key), float):
                        record = json.loads(raw)  # an integer id past 64 bits: orjson reads it as a float
                except orjson.JSONDecodeError as error:
                    bad_byte = _first_bad_utf8_byte(raw)
                    problem = f"invalid JSON ({error})" if bad_byte is None else f"invalid UTF-8 at byte {bad_byte}"
                    document = Document(raw.decode("utf-8", "replace"), where)
                    yield mark_failed(document, f"{where}: {problem}")
                    continue
                yield self._document(record, where)

    def _read_json_array(self, path: str, content: bytes) -> Iterator[Document]:
        """A .json file holding one array of records (read whole)."""
        try:
            records = orjson.loads(content)
        except orjson.JSONDecodeError as error:
            yield mark_failed(Document("", f"{path}:array"), f"{path}: invalid JSON array ({error})")
            return
        for index, record in enumerate(records):
            yield self._document(record, f"{path}:item {index}")

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
        has_text = self.text_key in record
        text = record.pop(self.text_key, None)
        raw_id = record.pop(self.id_key, None)
        metadata = record.pop("metadata", None)
        metadata = (metadata if isinstance(metadata, dict) else {"metadata": metadata}) if metadata else {}
        metadata.pop("prox", None)  # proxkit's own bookkeeping from an earlier run is recomputed
        if "prox" in record:  # a field of the user's: never proxkit's status
            record["input_prox"] = record.pop("prox")
        document = Document("", _exact_id(raw_id, where), metadata=metadata | record)
        if text is None:
            if has_text:
                return mark_failed(document, f"{where}: field {self.text_key!r} is null, not text")
            fields = ", ".join(sorted(record)) or "none"
            return mark_failed(document, f"{where}: no {self.text_key!r} field (fields: {fields}); see --text-key")
        if not isinstance(text, str):
            return mark_failed(document, f"{where}: field {self.text_key!r} is {type(text).__name__}, not text")
        document.text = text
        return document


def _may_hold_an_array(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(name.endswith(".json" + compression) for compression in COMPRESSIONS)


def _exact_id(raw_id: object, where: str) -> str:
    """The record's id as text; without one, where it was read (FILE:LINE)."""
    return where if raw_id is None else str(raw_id)


def _first_bad_utf8_byte(raw: bytes) -> int | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return None
