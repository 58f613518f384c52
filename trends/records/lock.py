"""One writer per run folder: a process that writes a run (or a sweep) holds its lock, so that a second `--resume`
of it, or `trends report` rebuilding it meanwhile, is refused with one line naming the holder.

The lock is the operating system's (`flock` on `<folder>/.lock`): it ends with its process however that process
ends, SIGKILL included, so a dead run's lock is simply taken over, and whether a run marked `running` still runs
is answered by whether its lock is held (`holder`), not by a process id that may have been reused. The file stays
(removing it would let two processes lock two different files); it holds who took it last, for the message.
Within one process the lock is re-entrant: the launch holds a run's folder and the run itself takes it again.
"""
from __future__ import annotations

import json
import os
import platform
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from trends.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs go unlocked there
    fcntl = None

LOCK = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # folder → (file descriptor, depth): this process's locks


@contextmanager
def hold(folder: Path, command: str = "") -> Iterator[None]:
    """Hold `folder`'s lock while the block runs; raise UserError naming the holder if another process has it."""
    key = Path(folder).resolve()
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
    else:
        fd = _acquire(key, command)
        _held[key] = (fd, 1)
    try:
        yield
    finally:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
        else:
            del _held[key]
            if fd >= 0:
                os.close(fd)  # closing releases the lock


def holder(folder: Path) -> dict | None:
    """Who holds `folder`'s lock right now ({pid, host, command, since}), None if nobody does (or never did)."""
    path = Path(folder) / LOCK
    if fcntl is None or not path.is_file():
        return None
    if Path(folder).resolve() in _held:
        return _read(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(path) or {}
    except OSError:  # a filesystem without locks
        return None
    finally:
        os.close(fd)  # a shared lock taken here goes with it
    return None


def refuse_if_held(folder: Path) -> None:
    """One line naming the process that holds `folder` now, before anything else happens (`hold` checks again)."""
    info = holder(folder)
    if info is not None:
        raise in_use(folder, info)


def in_use(folder: Path, info: dict) -> UserError:
    """`… is in use by process 123 on host (trends lm, since 2026-12-07T10:00:00+00:00); wait for it …`."""
    what = ", ".join(x for x in (info.get("command") and f"trends {info['command']}", info.get("since") and
                                 f"since {info['since']}") if x)
    who = f"process {info.get('pid', '?')} on {info.get('host', '?')}" + (f" ({what})" if what else "")
    return UserError(f"{folder} is in use by {who}; wait for it to end or stop it")


def _acquire(folder: Path, command: str) -> int:
    if fcntl is None or not folder.is_dir():
        return -1
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise in_use(folder, _read(folder / LOCK)) from None
    except OSError:  # a filesystem without locks (some network mounts): go on unlocked
        os.close(fd)
        return -1
    info = {"pid": os.getpid(), "host": platform.node(), "command": command,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return fd


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
