"""What a training run has finished, kept beside its output, so the same command run again (after a crash,
a kill, or in a later session) skips it: each cross-validation fold's result, and the final heads with
their threshold.

A record counts only for the run it came from: each carries the run's fingerprint (`run_fingerprint`: the
examples trained on, the settings, the plan), and the final heads' record also the digest of the weights
file it vouches for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from proxkit import __version__

PROGRESS_FOLDER = "progress"
# what a run writes into its config, not what it reads
UNFINGERPRINTED = ("metrics", "line_threshold", "languages", "doc_languages")


def run_fingerprint(examples: Sequence, config: object, **settings: object) -> str:
    """A digest of what decides a run's results: the examples (every field: lines, labels, gold, site,
    collection…), the tagger config minus what training writes into it, `settings` (epochs, folds, dtype…)
    and the proxkit version that trains."""
    digest = hashlib.sha1(__version__.encode())
    for example in examples:
        digest.update(hashlib.sha1(json.dumps(asdict(example), sort_keys=True).encode()).digest())
    fixed = {key: value for key, value in asdict(config).items() if key not in UNFINGERPRINTED}
    digest.update(json.dumps([fixed, settings], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class Progress:
    """The finished tasks of one run, one JSON file each in `output/progress/`."""

    def __init__(self, output: Path, fingerprint: str) -> None:
        self.folder = Path(output) / PROGRESS_FOLDER
        self.fingerprint = fingerprint

    def result(self, name: str) -> dict | None:
        """The recorded result of task `name` of this run; None when it has not finished (or finished in a
        run with another fingerprint)."""
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        return record["result"] if record.get("fingerprint") == self.fingerprint else None

    def record(self, name: str, result: dict) -> None:
        """Keep task `name`'s result (written whole or not at all)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"fingerprint": self.fingerprint, "result": result}))
        os.replace(partial, path)

    def weights(self, name: str, path: Path) -> dict | None:
        """The recorded result of task `name` when it vouches for the weights file at `path` as it is now."""
        result = self.result(name)
        if result is None or not path.is_file() or result.get("weights") != file_digest(path):
            return None
        return result

    def record_weights(self, name: str, path: Path, result: dict) -> None:
        """Keep task `name`'s result together with the digest of the weights file it wrote to `path`."""
        self.record(name, {**result, "weights": file_digest(path)})

    def clear(self) -> None:
        """Forget the run's finished tasks (once the whole run has ended)."""
        shutil.rmtree(self.folder, ignore_errors=True)
