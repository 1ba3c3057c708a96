"""Every input record becomes a document — bad ones marked failed with file, line and field."""

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from proxkit.outcome import Status, prox_metadata, status
from proxkit.readers import RecordReader, expand_inputs

GOOD = {"id": "a", "text": "A good page.", "url": "http://x", "metadata": {"lang": "en"}}
LINES = [
    json.dumps(GOOD).encode(),
    b'{"id": "broken", "text": "no closing brace"',
    json.dumps({"id": "c", "content": "wrong key"}).encode(),
    json.dumps({"id": "d", "text": 42}).encode(),
    json.dumps({"id": "e", "text": ""}).encode(),
    b"",
    json.dumps({"id": "f", "text": "  \n "}).encode(),
    b'{"id": "g", "text": "caf\xe9"}',
    b"[1, 2, 3]",
    json.dumps({"text": "no id here"}).encode(),
]


def read(files, **kwargs):
    return list(RecordReader([str(path) for path in files], **kwargs).run())


def test_each_record_is_a_document_and_each_problem_names_file_line_and_field(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    documents = read([path])
    assert len(documents) == 9  # the blank line is not a record
    by_id = {document.id: document for document in documents}
    good = by_id["a"]
    assert (good.text, status(good)) == ("A good page.", Status.KEPT)
    assert good.metadata == {"lang": "en", "url": "http://x"}
    errors = {document.id: prox_metadata(document).get("error") for document in documents}
    assert errors[f"{path}:2"].startswith(f"{path}:2: invalid JSON")
    assert errors["c"] == f"{path}:3: no 'text' field (fields: content); see --text-key"
    assert errors["d"] == f"{path}:4: field 'text' is int, not text"
    assert errors["e"] is None and errors["f"] is None  # empty texts are records; the doc stage drops them
    assert errors[f"{path}:8"] == f"{path}:8: invalid UTF-8 at byte 24"
    assert errors[f"{path}:9"] == f"{path}:9: a record must be a JSON object, got list"
    assert f"{path}:10" in by_id and status(by_id[f"{path}:10"]) is Status.KEPT
    assert sum(status(document) is Status.FAILED for document in documents) == 5


def test_compressed_jsonl_and_custom_keys(tmp_path):
    record = json.dumps({"doc_id": "x1", "body": "Text of a page."}) + "\n"
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as file:
        file.write(record)
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(record.replace("x1", "x2").encode()))
    documents = read(expand_inputs([str(tmp_path)]), text_key="body", id_key="doc_id")
    assert [(d.id, d.text) for d in documents] == [("x1", "Text of a page."), ("x2", "Text of a page.")]


def test_parquet_rows(tmp_path):
    table = pa.table({"id": ["p1", "p2", "p3"], "text": ["One page.", None, "Three."], "score": [0.1, 0.2, 0.3]})
    pq.write_table(table, tmp_path / "part.parquet")
    documents = read([tmp_path / "part.parquet"])
    assert [d.id for d in documents] == ["p1", "p2", "p3"]
    assert documents[0].metadata == {"score": 0.1}
    assert prox_metadata(documents[1])["error"] == f"{tmp_path / 'part.parquet'}:row 1: field 'text' is null, not text"


def test_files_are_shared_out_between_tasks_and_limit_applies_per_task(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.jsonl").write_text(
            "".join(json.dumps({"id": f"{i}-{j}", "text": "t"}) + "\n" for j in range(4))
        )
    files = expand_inputs([str(tmp_path)])
    reader = RecordReader(files)
    assert [d.id for d in reader.run(rank=1, world_size=2)] == ["1-0", "1-1", "1-2", "1-3"]
    assert len(list(reader.run(rank=0, world_size=2))) == 8
    assert [d.id for d in RecordReader(files, limit=5).run()] == ["0-0", "0-1", "0-2", "0-3", "1-0"]


def test_expand_inputs_errors_name_the_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        expand_inputs([str(tmp_path / "absent.jsonl")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no input files"):
        expand_inputs([str(tmp_path / "empty")])


def test_a_corrupt_file_ends_in_a_failed_record_and_reading_goes_on(tmp_path):
    good = json.dumps({"id": "ok", "text": "fine"}) + "\n"
    data = gzip.compress((good * 50).encode())
    (tmp_path / "a.jsonl.gz").write_bytes(data[: len(data) // 2])  # cut in the middle
    (tmp_path / "b.jsonl").write_text(good)
    documents = read(expand_inputs([str(tmp_path)]))
    failed = [d for d in documents if status(d) is Status.FAILED]
    assert len(failed) == 1 and "a.jsonl.gz: unreadable " in prox_metadata(failed[0])["error"]
    assert documents[-1].id == "ok" and status(documents[-1]) is Status.KEPT


def test_an_output_folder_is_read_without_its_cache_and_logs(tmp_path):
    for folder in ("data", "cache/doc/x", "logs/prox"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "00000.jsonl").write_text(json.dumps({"text": "t"}) + "\n")
    assert [Path(p).parent.name for p in expand_inputs([str(tmp_path)])] == ["data"]


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import lzma

    compressors = {
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "zst": zstandard.ZstdCompressor().compress,
    }
    return compressors[kind](data)


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zst"])
def test_a_cut_off_compressed_file_names_its_last_good_record(tmp_path, kind):
    import random

    words = random.Random(0).choices(["alpha", "beta", "gamma", "delta", "omega", "sigma"], k=200_000)
    records = [{"id": f"r{i}", "text": " ".join(words[i * 100 : (i + 1) * 100])} for i in range(2000)]
    data = _compress(kind, "".join(json.dumps(record) + "\n" for record in records).encode())
    path = tmp_path / f"cut.jsonl.{kind}"
    path.write_bytes(data[: len(data) * 3 // 5])
    documents = read([path])
    *good, failed = documents
    assert status(failed) is Status.FAILED and all(status(document) is Status.KEPT for document in good)
    assert [document.id for document in good] == [f"r{i}" for i in range(len(good))]
    error = prox_metadata(failed)["error"]
    assert error.startswith(f"{path}: unreadable ")
    assert not good or f"after record {len(good)} (id r{len(good) - 1})" in error
    assert len(good) > 0 or kind in ("bz2", "xz")  # these decode in blocks of up to 900 kB


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_files_of_several_compressed_frames_read_whole(tmp_path, kind):
    part = "".join(json.dumps({"id": f"{i}", "text": "t"}) + "\n" for i in range(3)).encode()
    path = tmp_path / f"in.jsonl.{kind}"
    path.write_bytes(_compress(kind, part) + _compress(kind, part.replace(b'"id": "', b'"id": "x')))
    documents = read([path])
    assert [d.id for d in documents] == ["0", "1", "2", "x0", "x1", "x2"]
    assert all(status(document) is Status.KEPT for document in documents)


def test_line_endings_bom_and_null_text(tmp_path):
    lines = [json.dumps({"id": f"{i}", "text": f"line {i}"}).encode() for i in range(4)]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines[0] + b"\r\n" + lines[1] + b"\r" + lines[2] + b"\n\r\n" + lines[3] + b"\r")
    documents = read([path])
    assert [(d.id, d.text, status(d)) for d in documents] == [(f"{i}", f"line {i}", Status.KEPT) for i in range(4)]
    cr_only = tmp_path / "cr.jsonl"
    cr_only.write_bytes(b"\r".join(lines))
    assert [d.id for d in read([cr_only])] == ["0", "1", "2", "3"]
    null = tmp_path / "null.jsonl"
    null.write_text('{"id": "n", "text": null}\n')
    [document] = read([null])
    assert prox_metadata(document)["error"] == f"{null}:1: field 'text' is null, not text"


def test_ids_past_64_bits_stay_exact(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_text('{"id": 18446744073709551616, "text": "a"}\n{"id": 18446744073709551617, "text": "b"}\n')
    assert [d.id for d in read([path])] == ["18446744073709551616", "18446744073709551617"]


def test_a_records_own_prox_field_never_becomes_proxkits_status(tmp_path):
    path = tmp_path / "forged.jsonl"
    forged = [{"status": "bogus"}, "x", {"status": "dropped", "drop_reason": "forged"}]
    path.write_text("".join(json.dumps({"id": f"{i}", "text": "t", "prox": p}) + "\n" for i, p in enumerate(forged)))
    documents = read([path])
    assert [status(d) for d in documents] == [Status.KEPT] * 3
    assert [d.metadata["input_prox"] for d in documents] == forged
    assert all("prox" not in d.metadata for d in documents)


def test_json_and_ndjson_files_are_read(tmp_path):
    (tmp_path / "a.ndjson").write_text(json.dumps({"id": "nd", "text": "t"}) + "\n")
    (tmp_path / "b.json").write_text(json.dumps({"id": "lines", "text": "t"}) + "\n")
    (tmp_path / "c.json").write_text(json.dumps([{"id": "arr0", "text": "t"}, {"id": "arr1", "text": "u"}], indent=2))
    (tmp_path / "notes.txt").write_text("not records")
    files = expand_inputs([str(tmp_path)])
    assert [Path(p).name for p in files] == ["a.ndjson", "b.json", "c.json"]
    assert [d.id for d in read(files)] == ["nd", "lines", "arr0", "arr1"]


def test_only_a_proxkit_outputs_own_cache_and_logs_are_skipped(tmp_path):
    corpus = tmp_path / "corpus"
    for folder in ("logs", "cache", "news"):
        (corpus / folder).mkdir(parents=True)
        (corpus / folder / "part.jsonl").write_text(json.dumps({"text": "t"}) + "\n")
    assert sorted(Path(p).parent.name for p in expand_inputs([str(corpus)])) == ["cache", "logs", "news"]
    (corpus / "run" / "logs" / "prox").mkdir(parents=True)  # a proxkit output inside the corpus folder
    (corpus / "run" / "logs" / "prox" / "00000.json").write_text("{}")
    for folder in ("data", "cache/doc"):
        (corpus / "run" / folder).mkdir(parents=True)
        (corpus / "run" / folder / "00000.jsonl").write_text(json.dumps({"text": "t"}) + "\n")
    files = [str(Path(p).relative_to(corpus)) for p in expand_inputs([str(corpus)])]
    assert files == ["cache/part.jsonl", "logs/part.jsonl", "news/part.jsonl", "run/data/00000.jsonl"]
