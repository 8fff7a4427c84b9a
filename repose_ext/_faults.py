"""Named crash points for fault-injection tests of the training run's files.

``REPOSE_FAULT=<point>[:<n>]`` makes the process die (``os._exit(91)``, no cleanup, like a kill) the n-th time
(default the first) it reaches ``fault_point(<point>)``. Unset, a fault point costs one dictionary lookup.
Points: ``checkpoint_tmp`` (a checkpoint's temporary file written, not yet renamed), ``text_tmp`` (the same for
log.csv, summary.json, ...), ``after_csv``, ``after_best``, ``after_latest`` (the end of an epoch, after each
write), ``before_summary`` (the end of the run).
"""

from __future__ import annotations

import os
from typing import Dict

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
