"""The exception raised for data files that do not follow their documented schema."""

from __future__ import annotations

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    """A data file (or an in-memory copy of one) is missing a key or holds an array of the wrong shape.

    The message names the file, the key path (e.g. ``positions_3d['S1']['Walking']``), what was expected and
    what was found. Subclasses :class:`ValueError`, so ``except ValueError`` catches it too.
    """
