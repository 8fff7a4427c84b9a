"""One training process per run folder: an exclusive lock on ``<run folder>/.lock``.

The lock is an ``flock`` on the file, held for the whole run; the file also names its owner (PID and host) for the
message a second run gets. A second run into the same folder stops with :class:`RunLockedError` (the CLI prints
one line and exits with code 2) before writing anything. A run that crashed, was killed or lost its machine holds
no lock any more (the kernel drops it with the process), so the next run simply takes the folder over; there is
no stale-lock guessing by PID, and two runs that start at the same instant cannot both win. The file is removed
when the run ends.
"""

from __future__ import annotations

import fcntl
import os
import socket

from .config import ConfigError

LOCK_NAME = ".lock"


class RunLockedError(ConfigError):
    """The run folder belongs to another running process."""


class RunLock:
    """The lock of one run folder; :meth:`acquire` before writing into it, :meth:`release` at the end."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK_NAME)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _owner(self, fd: int) -> str:
        try:
            pid, host = os.pread(fd, 4096, 0).decode("utf-8", "replace").split("\n")[:2]
            return f"process {int(pid)} on {host}"
        except (OSError, ValueError):
            return "another process"

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._owner(fd)
                os.close(fd)
                raise RunLockedError(f"run folder {os.path.dirname(self.path)} is in use by {owner}; choose "
                                     f"another --run-dir, or wait for that run to end") from None
            try:  # the file we locked may have been removed by its previous owner meanwhile: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.remove(self.path)  # while still locked: a waiting process then locks a new file, not this one
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
