"""How a run's files reach the disk: whole or not at all, and still there after a kill, a full disk or a power cut.

`write_atomic` is the one writer of every file a run keeps whole (checkpoints, summaries, a rewound metrics.jsonl,
reports, tables, plots, the tour's state and page): it writes a temporary file beside the target under a name no
other writer uses, flushes and fsyncs it, renames it over the target (atomic on POSIX) and fsyncs the folder, so
that the rename itself survives a power cut. On any failure (ENOSPC: a full disk) the temporary file goes and the
target keeps its last good content: no half-written checkpoint ever replaces a good one.

`append_line` adds one record to a log (metrics.jsonl), handed to the system at once: a killed process loses none
of what it logged. `sync` makes a log durable as well; a run does it at each checkpoint, so that what a checkpoint
resumes from and the record of how it got there reach the disk together.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Callable

Content = bytes | str | Callable[[BinaryIO], None]  # the bytes, the text (UTF-8), or a function writing them


def write_atomic(path: Path, content: Content) -> None:
    """Replace `path` with `content`, durably, or leave it as it was (and no temporary file) if anything fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:  # x: a name of its own, never another writer's file
            if callable(content):
                _write_with(content, f, path)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a buffered write's error names no file: the target
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    _sync_folder(path.parent)


def _write_with(write: Callable[[BinaryIO], None], f: BinaryIO, path: Path) -> None:
    """Let `write` fill `f`; where it fails because the file did (torch.save turns a full disk into "unexpected
    pos 704 vs 598"), raise the file's own error instead."""
    watched = _Watched(f)
    try:
        write(watched)
    except Exception:
        if watched.error is not None:
            raise watched.error from None
        raise


class _Watched:
    """A file that remembers the first error its writes raised."""

    def __init__(self, f: BinaryIO):
        self._f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name: str):
        return getattr(self._f, name)


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=jsonable) + "\n")


def append_line(path: Path, line: str) -> None:
    """One record at the end of a log, in one write, handed to the system before this returns."""
    with open(path, "a") as f:
        f.write(line if line.endswith("\n") else line + "\n")


def sync(path: Path) -> None:
    """Make what was appended to `path` durable (fsync), where it exists."""
    _fsync(path)


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename in it survives a power cut; some filesystems cannot, and say so: skipped."""
    _fsync(folder, cannot=(errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES))


def _fsync(path: Path, cannot: tuple[int, ...] = ()) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # gone, or a folder this system will not open: nothing to make durable
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in cannot:
            raise
    finally:
        os.close(fd)


def jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
