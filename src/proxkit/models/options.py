"""What the registry checks about a model before anything heavy loads: whether a directory holds a tagger
(its `tagger.json`), and the tagger's own options (its cut-offs)."""

from __future__ import annotations

from pathlib import Path

from proxkit.errors import OptionError

TAGGER_CONFIG = "tagger.json"  # a tagger directory's config; its presence makes a directory a tagger
TAGGER_THRESHOLDS = ("line_threshold", "doc_threshold")  # options of a tagger's writer, not a generative one's


def is_tagger(directory: str | Path) -> bool:
    """Whether `directory` holds a tagger refiner."""
    return (Path(directory).expanduser() / TAGGER_CONFIG).is_file()


def check_thresholds(holder: object) -> None:
    """Raise OptionError unless each tagger threshold `holder` sets (an attribute; None: unset) lies in (0, 1)."""
    for name in TAGGER_THRESHOLDS:
        value = getattr(holder, name, None)
        if value is not None and not 0.0 < value < 1.0:
            raise OptionError(f"{name} must lie within (0, 1), got {value}")
