"""What makes a rerun into an output folder safe: the same inputs and deciding options as the run that
wrote it (`logs/prox/run.json`), and no other run writing there at the same time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import fsspec
from loguru import logger

from proxkit.errors import RunConflictError

RUN_RECORD = "logs/prox/run.json"
LOCK = "logs/prox/lock"
OUTPUTS = ("data", "dropped", "failed", "logs", "stats.json")  # what a restart removes; cache/ is kept


def run_record(config) -> dict:
    """The tasks, the input files (path and size) and the deciding options of a run."""
    inputs = []
    for path in config.input_files():
        fs, local = fsspec.core.url_to_fs(path)
        inputs.append({"path": path, "size": fs.size(local)})
    return {"tasks": config.tasks, "inputs": inputs, "settings": config.deciding()}


def differences(recorded: dict, current: dict) -> list[str]:
    """What differs between the run that wrote a folder and this one, in words (empty when nothing does)."""
    found = []
    if recorded.get("tasks") != current["tasks"]:
        found.append(f"--tasks {recorded.get('tasks')} then, {current['tasks']} now")
    if "inputs" in recorded:  # a folder written before inputs were recorded is checked on its tasks only
        before = {item["path"]: item["size"] for item in recorded["inputs"]}
        now = {item["path"]: item["size"] for item in current["inputs"]}
        for label, paths in (
            ("new input files", [p for p in now if p not in before]),
            ("input files gone", [p for p in before if p not in now]),
            ("input files changed size", [p for p in now if p in before and now[p] != before[p]]),
        ):
            if paths:
                shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
                found.append(f"{label}: {shown}")
        old, new = recorded.get("settings", {}), current["settings"]
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                found.append(f"{key} {json.dumps(old.get(key))} then, {json.dumps(new.get(key))} now")
    return found


def check_same_run(config) -> None:
    """Refuse to resume into a folder another run wrote (RunConflictError saying what differs), or with
    `config.restart` clear its outputs first; then record this run."""
    output = config.output.rstrip("/")
    fs, root = fsspec.core.url_to_fs(output)
    current = run_record(config)
    record = f"{root}/{RUN_RECORD}"
    if fs.exists(record):
        with fs.open(record) as file:
            recorded = json.load(file)
        found = differences(recorded, current)
        if found and not config.restart:
            raise RunConflictError(
                f"{output} holds another run ({'; '.join(found)}): rerun with what it was written with, "
                "write to a new -o, or pass --restart to start over there"
            )
        if found or config.restart:
            clear_outputs(fs, root)
    elif config.restart:
        clear_outputs(fs, root)
    fs.makedirs(f"{root}/logs/prox", exist_ok=True)
    with fs.open(record, "w") as file:
        json.dump(current, file, indent=1)


def clear_outputs(fs, root: str) -> None:
    """Remove a run's records, logs and stats; the program cache stays (its entries are keyed by each
    document's text and the settings that wrote them, so they are never reused wrongly)."""
    for name in OUTPUTS:
        path = f"{root}/{name}"
        if not fs.exists(path):
            continue
        if name != "logs":
            fs.rm(path, recursive=True)
            continue
        for child in fs.find(path):  # every log but the lock this run holds
            if not child.endswith(f"/{LOCK}"):
                fs.rm(child)
    logger.info(f"starting over in {root}: its earlier records, logs and stats were removed")


def reopen_failed_tasks(output: str) -> list[int]:
    """Mark undone the finished tasks whose failed records include a model failure (an endpoint down, a
    malformed reply), so the rerun redoes them: the program cache spares the documents that went well."""
    from proxkit.stages import MODEL_FAILURES, read_output_file

    fs, root = fsspec.core.url_to_fs(output.rstrip("/"))
    reopened = []
    protocol = output.split("://")[0] + "://" if "://" in output else ""
    for path in sorted(fs.glob(f"{root}/failed/[0-9]*.*")):
        rank = int(path.rsplit("/", 1)[-1].split(".")[0])
        errors = (r["metadata"]["prox"].get("error", "") for r in read_output_file(protocol + path))
        model_failed = any(error.startswith(MODEL_FAILURES) for error in errors)
        marker = f"{root}/logs/completions/{rank:05d}"
        if model_failed and fs.exists(marker):
            fs.rm(marker)
            reopened.append(rank)
    if reopened:
        logger.info(f"retrying the failed documents of tasks {reopened}")
    return reopened


@contextmanager
def output_lock(output: str) -> Iterator[None]:
    """Hold the output folder for this run: a second run into it fails at once (local folders; other
    file systems have no lock, and a warning says so)."""
    fs, root = fsspec.core.url_to_fs(output.rstrip("/"))
    if "file" not in fs.protocol:
        logger.warning(f"no lock on {output}: make sure no other run writes there at the same time")
        yield
        return
    import fcntl
    from pathlib import Path

    path = Path(root) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunConflictError(f"{output} is being written by another run (it holds {path})") from None
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
