"""A text file as character ids on disk, encoded once: what lets a corpus larger than memory train.

The ids go into a flat file in the smallest dtype the vocabulary fits (uint8 up to 256 characters, else uint16 —
nanoGPT's train.bin convention), with the vocabulary beside it in a JSON file, both under
`<cache>/corpora/<sha256 of the text>`: an unchanged text opens at once however large it is, an edited one is
encoded anew. A run reads only the windows it draws, each straight from the file. (Not through a memory map: the
kernel maps a file's cached pages in folios of up to 2 MB, so random windows from a map of a 1 GB text grew the
process by ≈ 2 MB each — 0.8 GB after 20 batches of 64, measured. Two small reads per window cost microseconds.)
Encoding reads the text in chunks, twice (the characters it holds, then their ids), so its memory stays bounded too.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from trends.clock import Stopwatch
from trends.core.data import cache_dir
from trends.errors import UserError

log = logging.getLogger("trends.text")

CHUNK = 1 << 24  # characters at a time (16M): encoding's memory peaks near 20 bytes × this
CODE_POINTS = 0x110000  # every Unicode character


class Ids:
    """A stretch of an encoded text's ids, on disk: its length, a split, and windows read from the file."""

    def __init__(self, path: Path, dtype: str, start: int, length: int):
        self.path, self.dtype, self.start, self.length = path, np.dtype(dtype), start, length

    def __len__(self) -> int:
        return self.length

    def split(self, at: int) -> tuple[Ids, Ids]:
        """The first `at` ids and the rest."""
        return (Ids(self.path, self.dtype.name, self.start, at),
                Ids(self.path, self.dtype.name, self.start + at, self.length - at))

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        """(len(starts), length) int64: the `length` ids from each start."""
        size = self.dtype.itemsize
        out = np.empty((len(starts), length), dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as f:
            for row, start in zip(out, starts.tolist()):
                f.seek((self.start + start) * size)
                f.readinto(memoryview(row).cast("B"))
        return out.astype(np.int64)


@dataclass
class EncodedText:
    ids: Ids  # (characters,) uint8/uint16 on disk
    vocab: list[str]  # id → character, in code-point order (as sorted(set(text)))


def encode_file(path: Path, chunk: int = CHUNK) -> EncodedText:
    """The ids and vocabulary of the UTF-8 text at `path`: from the cache, or encoded into it first, `chunk`
    characters at a time."""
    key = content_hash(path)
    folder = cache_dir() / "corpora"
    ids_file, meta_file = folder / f"{key}.bin", folder / f"{key}.json"
    meta = _read_meta(meta_file, ids_file)
    if meta is None:
        meta = _encode(path, ids_file, meta_file, chunk)
    return EncodedText(Ids(ids_file, meta["dtype"], 0, meta["characters"]), meta["vocab"])


def content_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _read_meta(meta_file: Path, ids_file: Path) -> dict | None:
    """The cached encoding's description, if it is complete (the JSON file is written last)."""
    try:
        meta = json.loads(meta_file.read_text())
        complete = ids_file.stat().st_size == meta["characters"] * np.dtype(meta["dtype"]).itemsize
    except (OSError, ValueError, KeyError):
        return None
    return meta if complete else None


def _encode(path: Path, ids_file: Path, meta_file: Path, chunk: int) -> dict:
    watch = Stopwatch.started()
    size = path.stat().st_size
    log.info("encoding %s (%.1f MB) into %s, once", path, size / 1e6, ids_file.parent)
    counts = np.zeros(CODE_POINTS, dtype=np.int64)
    for code_points in _code_points(path, chunk):
        counts += np.bincount(code_points, minlength=CODE_POINTS)
    present = np.flatnonzero(counts)
    dtype = np.uint8 if len(present) <= 1 << 8 else np.uint16 if len(present) <= 1 << 16 else np.uint32
    to_id = np.zeros(CODE_POINTS, dtype=dtype)
    to_id[present] = np.arange(len(present))
    ids_file.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"  # two processes (torchrun's ranks) may encode at once: each writes its own
    with open(ids_file.with_name(ids_file.name + suffix), "wb") as out:
        for code_points in _code_points(path, chunk):
            out.write(to_id[code_points].tobytes())
    meta = {"source": str(path), "bytes": size, "characters": int(counts.sum()), "dtype": np.dtype(dtype).name,
            "vocab": [chr(c) for c in present], "encode_seconds": round(watch.stop(), 2)}
    meta_file.with_name(meta_file.name + suffix).write_text(json.dumps(meta, ensure_ascii=False))
    os.replace(ids_file.with_name(ids_file.name + suffix), ids_file)
    os.replace(meta_file.with_name(meta_file.name + suffix), meta_file)  # last: it marks the encoding complete
    log.info("encoded %d characters (%d distinct, %s) in %.1f s", meta["characters"], len(present), meta["dtype"],
             meta["encode_seconds"])
    return meta


def _code_points(path: Path, chunk: int) -> Iterator[np.ndarray]:
    """The text's characters as Unicode code points, `chunk` characters at a time (read as Python reads text: UTF-8,
    line endings made \\n)."""
    read = 0
    with open(path, encoding="utf-8") as f:
        while True:
            try:
                text = f.read(chunk)
            except UnicodeDecodeError as err:
                raise UserError(f"{path} is not UTF-8 text ({err.reason} after character {read:,})") from None
            if not text:
                return
            read += len(text)
            yield np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
