"""A report folder's state while a run writes it: the ``running`` record, its lock, and dead runs.

A report folder ``reports/EXP/PROFILE/`` must never claim a state it is not in. So a run

1. takes the folder's lock (:class:`FolderLock`: a ``.lock`` file holding the owner's pid, host
   and start; a second run into the same folder is refused with a message naming the owner; a
   lock left by a process that no longer exists on this host is taken over, with a message);
2. removes the files of the earlier run (:func:`clear_outputs`: notebook, HTML, metrics...) and
   writes ``run.json`` with ``"status": "running"``, its pid and host (:func:`running_record`);
3. replaces ``run.json`` atomically when it ends (``ok``, ``failed``, ``timed_out`` or
   ``interrupted``; SIGTERM is turned into an interruption, so ``timeout`` and ``docker stop``
   end in ``interrupted``).

A run killed with SIGKILL (or a machine that lost power) leaves ``"running"`` behind;
:func:`effective_status` reads such a record as ``died`` when its pid no longer exists on this
host, and the index shows that word.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import signal
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from medgan_core.atomic import write_json_atomic

LOCK_NAME = ".lock"
KEPT = (LOCK_NAME, "run.json")  # what a new run does not remove (run.json is replaced by the running record)


class FolderBusyError(RuntimeError):
    """Another live run holds the report folder's lock."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (and is not a zombie we can see)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie has exited: it only waits for its parent to read its status
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _owner(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _holder_is_dead(owner: dict[str, Any]) -> bool:
    """A lock's owner is dead when it ran on this host and its pid is gone (or the file is unreadable)."""
    if not owner or not isinstance(owner.get("pid"), int):
        return True
    return owner.get("host") == socket.gethostname() and not pid_alive(owner["pid"])


class FolderLock:
    """An exclusive lock on one report folder, held for the whole run.

    Args:
        folder: the report folder (created if missing).
        command: the command line, recorded in the lock file for whoever finds it.
        log: where messages go (taking over a dead run's lock).
    """

    def __init__(self, folder: Path, command: str = "", log: Any = None) -> None:
        self.folder, self.command = Path(folder), command
        self.path = self.folder / LOCK_NAME
        self.log = log if log is not None else sys.stderr

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                       "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}, fh)
        return True

    def __enter__(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a takeover races with at most a few others
            if self._create():
                return self
            owner = _owner(self.path)
            if not _holder_is_dead(owner):
                raise FolderBusyError(
                    f"{self.folder} is being written by another run (pid {owner.get('pid')} on "
                    f"{owner.get('host')}, since {owner.get('since')}: {owner.get('command') or 'no command recorded'}). "
                    f"Wait for it to finish, or pass another --out. If that process is gone, delete {self.path}.")
            print(f"medgan: taking over {self.path}, left by a run that no longer exists "
                  f"(pid {owner.get('pid')}, since {owner.get('since')}).", file=self.log)
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        raise FolderBusyError(f"could not take the lock {self.path}: other runs keep taking it; try again.")

    def __exit__(self, *exc: Any) -> None:
        if _owner(self.path).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)


def clear_outputs(folder: Path) -> list[str]:
    """Remove an earlier run's files from a report folder (every file but the lock and ``run.json``:
    notebook, HTML, metrics, the notebook's own files such as answer sheets); returns their names."""
    removed = []
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.name not in KEPT:
            path.unlink()
            removed.append(path.name)
    return removed


def running_record(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (experiment, profile, start, command...) with ``status: running``, pid and host."""
    return {**base, "status": "running", "error": None, "pid": os.getpid(), "host": socket.gethostname()}


def write_running(folder: Path, base: dict[str, Any]) -> dict[str, Any]:
    """Write the ``running`` record to ``folder/run.json`` (atomically) and return it."""
    record = running_record(base)
    write_json_atomic(Path(folder) / "run.json", record)
    return record


def effective_status(run: dict[str, Any]) -> str:
    """The status to show: ``died`` for a ``running`` record whose process is gone from this host."""
    status = str(run.get("status", "unknown"))
    if status != "running":
        return status
    pid, host = run.get("pid"), run.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not pid_alive(pid):
        return "died"
    return status


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (main thread only), so the run is
    finished as ``interrupted`` instead of vanishing with a ``running`` record."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def is_disk_full(err: BaseException) -> bool:
    """Whether an error is the disk being full (for a one-line message instead of a traceback)."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
