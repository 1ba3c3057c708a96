"""Gather what a run wrote (OUT/stats.json and the records of OUT/data, OUT/dropped, OUT/failed), draw the
plots and render the report page."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from proxkit.records import read_stats
from proxkit.report.diff import LineChange, line_changes
from proxkit.stages import iter_output_records

PLACES = (("kept", "data"), ("dropped", "dropped"), ("failed", "failed"))


@dataclass
class DocumentView:
    """One sampled document as the page shows it."""

    id: str
    status: str
    reason: str | None
    words_before: int
    words_after: int
    lines: list[LineChange]
    doc_program: str | None
    chunk_program: str | None
    errors: list[dict]
    final_text: str | None

    @property
    def lines_removed(self) -> int:
        return sum(change.fate == "removed" for change in self.lines)

    @property
    def lines_edited(self) -> int:
        return sum(change.fate == "edited" for change in self.lines)


@dataclass
class RunDigest:
    """Per-document numbers over every record of the run (not only the sampled ones)."""

    word_retention: list[float] = field(default_factory=list)  # kept documents: words after / before
    lines_removed: list[int] = field(default_factory=list)  # documents that reached the executor
    calls: Counter = field(default_factory=Counter)
    drop_reasons: Counter = field(default_factory=Counter)


def document_view(record: dict, status: str) -> DocumentView:
    metadata = record.get("metadata", {})
    prox = metadata.get("prox", {})
    raw = record.get("raw_content", record.get("text", ""))
    final = record.get("text") if status == "kept" else None
    stats = prox.get("stats", {})
    return DocumentView(
        id=str(record.get("id")),
        status=status,
        reason=prox.get("drop_reason") or prox.get("error"),
        words_before=stats.get("words_before", len(raw.split())),
        words_after=stats.get("words_after", len(final.split()) if final else 0),
        lines=line_changes(raw, final) if status != "failed" else line_changes(raw, raw),
        doc_program=metadata.get("doc_program"),
        chunk_program=metadata.get("chunk_program"),
        errors=prox.get("errors", []),
        final_text=final,
    )


def collect(run: Path, max_documents: int) -> tuple[RunDigest, list[DocumentView]]:
    """The digest of every record and up to `max_documents` sampled views of each status."""
    digest, views = RunDigest(), []
    for status, place in PLACES:
        for index, record in enumerate(iter_output_records(run / place)):
            prox = record.get("metadata", {}).get("prox", {})
            stats = prox.get("stats", {})
            if status == "kept" and stats.get("words_before"):
                digest.word_retention.append(stats.get("words_after", 0) / stats["words_before"])
            if "lines_removed" in stats:
                digest.lines_removed.append(stats["lines_removed"])
            digest.calls.update(stats.get("calls", {}))
            if status == "dropped":
                digest.drop_reasons[prox.get("drop_reason", "unknown")] += 1
            if index < max_documents:
                views.append(document_view(record, status))
    return digest, views


def _svg(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def plots(stats: dict, digest: RunDigest) -> dict[str, str]:
    """Inline SVG plots by title: token retention, calls by type, removed lines per document, drop reasons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, str] = {}
    tokens = stats.get("tokens", {})
    if tokens.get("raw"):
        names, values = ["raw", "after doc stage", "out"], [tokens["raw"], tokens["after_doc_stage"], tokens["out"]]
        unit = "tokens"
    else:
        names, values, unit = ["in", "out"], [stats["words"]["in"], stats["words"]["out"]], "words"
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8))
    bars = left.bar(names, values, color=["#999999", "#6b8fb3", "#d9822b"][: len(names)])
    left.bar_label(bars, labels=[f"{value / max(values[0], 1):.0%}" for value in values])
    left.set_ylabel(unit)
    left.set_title(f"{unit} retained")
    right.hist(digest.word_retention or [0], bins=20, range=(0, 1), color="#6b8fb3")
    right.set_xlabel("words kept / words in (kept documents)")
    right.set_ylabel("documents")
    right.set_title("retention per document")
    figures["Token retention"] = _svg(figure)

    figure, axis = plt.subplots(figsize=(4, 2.8))
    calls = sorted(digest.calls.items(), key=lambda item: -item[1]) or [("none", 0)]
    axis.bar([name for name, _ in calls], [count for _, count in calls], color="#6b8fb3")
    axis.set_ylabel("calls")
    axis.tick_params(axis="x", rotation=30)
    axis.set_title("program calls by type")
    figures["Calls by type"] = _svg(figure)

    figure, axis = plt.subplots(figsize=(4, 2.8))
    removed = digest.lines_removed or [0]
    axis.hist(removed, bins=min(30, max(removed) + 1), color="#d9822b")
    axis.set_xlabel("lines removed")
    axis.set_ylabel("documents")
    axis.set_title("removed lines per document")
    figures["Removed lines per document"] = _svg(figure)

    reasons = digest.drop_reasons.most_common(12) or [("none", 0)]
    figure, axis = plt.subplots(figsize=(5, 0.6 + 0.3 * len(reasons)))
    axis.barh([name for name, _ in reasons][::-1], [count for _, count in reasons][::-1], color="#b35c5c")
    axis.set_xlabel("documents")
    axis.set_title("drop reasons")
    figures["Drop reasons"] = _svg(figure)
    return figures


def build_report(run: str | Path, output: str | Path | None = None, *, max_documents: int = 100) -> Path:
    """Write the report of the run in `run` (default OUT/report.html); return its path."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    run = Path(run)
    stats_path = run / "stats.json"
    if not stats_path.is_file():
        raise FileNotFoundError(f"{stats_path} not found: is {run} the output folder of prox refine or prox baseline?")
    stats = read_stats(stats_path)
    digest, views = collect(run, max_documents)
    environment = Environment(loader=PackageLoader("proxkit.report"), autoescape=select_autoescape(["html"]))
    page = environment.get_template("report.html").render(
        run=str(run), stats=stats, plots=plots(stats, digest), documents=views, max_documents=max_documents
    )
    path = Path(output) if output else run / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
