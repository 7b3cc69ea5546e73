"""Errors raised by the data layer.

Every error names the file or folder involved and says how to fix the problem, so that a
student who sees one knows what to do without reading a traceback.
"""

from __future__ import annotations


class DataError(Exception):
    """Base class of every data problem (missing, corrupt or inconsistent data)."""


class MissingDatasetError(DataError, FileNotFoundError):
    """A dataset folder or one of its required files is absent."""


class DataFileError(DataError, ValueError):
    """A file exists but cannot be read: truncated, corrupt, wrong shape or wrong columns."""


class LabelMismatchError(DataError, ValueError):
    """Labels and images disagree (an image without a label, or a label without an image)."""
