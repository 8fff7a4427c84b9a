"""Crash-safe file writes, and named crash points to test them.

:func:`atomic_write` writes to a temporary file beside the destination and renames it over it: a reader, or a
run resumed after a kill, sees the old or the new file, never part of one.

``REPOSE_FAULT=<point>[:<n>]`` makes the process die (``os._exit(91)``, no cleanup, like a kill) the n-th time
(default the first) it reaches ``fault_point(<point>)``. Unset, a fault point costs one dictionary lookup.
Points: ``checkpoint_tmp`` (a checkpoint's temporary file written, not yet renamed), ``text_tmp`` (the same for
log.csv, summary.json, ...), ``after_csv``, ``after_best``, ``after_latest`` (the end of an epoch, after each
write), ``before_summary`` (the end of the run).
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, Callable, Dict

EXIT_CODE = 91
_seen: Dict[str, int] = {}


def fault_point(name: str) -> None:
    """Die here if ``REPOSE_FAULT`` names this point (and this is its n-th visit)."""
    spec = os.environ.get("REPOSE_FAULT")
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(count or 1):
        os._exit(EXIT_CODE)


def atomic_write(path: str, write: Callable[[IO], None], binary: bool = True, fault: str = "text_tmp") -> None:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, fsync it, give it mode 0644 (mkstemp's 0600 would
    make these files unlike the others of a run) and rename it onto ``path``; on any error the temporary file is
    removed and ``path`` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": "", "encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        fault_point(fault)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
