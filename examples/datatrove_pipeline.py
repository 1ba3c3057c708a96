"""proxkit's refining steps inside a datatrove pipeline of your own: datatrove's JSONL reader, the bundled
taggers by name, the executor, and datatrove's Parquet writer for what is kept.

    python examples/datatrove_pipeline.py [INPUT_FOLDER] [OUTPUT_FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.filters import LambdaFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import ParquetWriter

from proxkit.stages import ChunkRefiner, DocRefiner, InputGuard, ProgramExecutor


def kept(document) -> bool:
    return document.metadata["prox"].get("status", "kept") == "kept"


def main(inputs: str, output: str) -> None:
    pipeline = [
        JsonlReader(inputs, glob_pattern="*.jsonl"),
        InputGuard(),
        DocRefiner("proxkit/web-doc-tagger"),
        ChunkRefiner("proxkit/web-chunk-tagger"),
        ProgramExecutor(),
        LambdaFilter(kept),  # dropped documents stop here; their reason is in metadata["prox"]
        ParquetWriter(f"{output}/data"),
    ]
    LocalPipelineExecutor(pipeline, tasks=1, logging_dir=f"{output}/logs").run()


if __name__ == "__main__":
    here = Path(__file__).parent
    main(sys.argv[1] if len(sys.argv) > 1 else str(here), sys.argv[2] if len(sys.argv) > 2 else "out/datatrove")
