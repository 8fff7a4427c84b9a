"""One training process per run folder: an exclusive lock file holding the owner's PID and host.

``<run folder>/.lock`` is created with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ file systems). A second
run into the same folder finds it and stops with :class:`RunLockedError` (the CLI prints one line and exits with
code 2). A lock left behind by a crash, whose owner is on this host and no longer running, is stale: it is taken
over. A lock from another host is never taken over (its process cannot be checked from here): remove the file
by hand once that run is gone.
"""

from __future__ import annotations

import os
import socket
from typing import Optional

from .config import ConfigError

LOCK_NAME = ".lock"


class RunLockedError(ConfigError):
    """The run folder belongs to another running process."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """The lock of one run folder; :meth:`acquire` before writing into it, :meth:`release` at the end."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.held = False

    def _owner(self) -> Optional[tuple]:
        try:
            with open(self.path, "r", encoding="utf-8") as f:
                pid, host = f.read().split("\n")[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None  # vanished, or half written by a process that died while creating it

    def acquire(self) -> None:
        me = socket.gethostname()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and (owner[1] != me or _alive(owner[0])):
                    raise RunLockedError(
                        f"run folder {os.path.dirname(self.path)} is in use by process {owner[0]} on {owner[1]}; "
                        f"choose another --run-dir, or wait for that run to end") from None
                try:  # stale: its owner died on this host (or never finished writing the file)
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n{me}\n")
            self.held = True
            return
        raise RunLockedError(f"could not lock run folder {os.path.dirname(self.path)} (another process keeps "
                             f"taking it)")

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
