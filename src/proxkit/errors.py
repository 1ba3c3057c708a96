"""Errors a user can cause — a bad option, a missing input, an unknown model, a rerun that would mix two
runs, a missing extra. The command line reports these as usage errors; anything else is a bug and keeps
its traceback. Each also derives from the built-in error it refines, so `except ValueError` still works."""

from __future__ import annotations


class ProxError(Exception):
    """Something the user can fix; the message says what."""


class OptionError(ProxError, ValueError):
    """An option or setting out of its range, or options that do not go together."""


class InputError(ProxError, FileNotFoundError):
    """An input file or folder that is not there, or holds no records."""


class RunConflictError(ProxError, ValueError):
    """A rerun into an output folder that holds another run, or that another run is writing."""


class MissingExtraError(ProxError, ImportError):
    """An optional dependency that the chosen feature needs is not installed."""


class ModelLoadError(ProxError, RuntimeError):
    """A model that cannot be loaded or an engine that cannot start."""
