"""The data root and verified downloads.

Layout of a root (the one `../shared/data` has): `<root>/tinyshakespeare/input.txt`, `<root>/Cora/raw/...`,
`<root>/MUTAG/raw/...`, torchvision's own folders. A read-only root is read, never written: anything a demo must
write (downloads, processed files) goes to the user cache instead.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from .errors import UserError


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/trends` (default `~/.cache/trends`)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trends"


def data_root(root: str | None) -> Path:
    """`data.root` from the config, else `$TRENDS_DATA`, else `<cache>/data`."""
    chosen = root or os.environ.get("TRENDS_DATA") or cache_dir() / "data"
    return Path(chosen).expanduser().resolve()


def is_writable(path: Path) -> bool:
    """True if files can be created in `path` (or in the nearest existing parent, for a folder yet to be made)."""
    path = Path(path)
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    if os.geteuid() == 0 and not path.stat().st_mode & 0o222:
        return False  # root passes os.access everywhere; a folder marked read-only is meant to stay untouched
    return os.access(path, os.W_OK | os.X_OK)


def writable_copy_of(root: Path, name: str) -> Path:
    """Where to write `<root>/<name>`: there if the root is writable, else the same name under the cache."""
    target = Path(root) / name
    return target if is_writable(target) else cache_dir() / "data" / name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, sha256: str | None, timeout: float = 30) -> Path:
    """Download `url` to `dest` unless a verified copy is there; checksum first, then an atomic move into place."""
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise UserError(f"could not download {url} ({reason}).\n"
                        f"Put the file at {dest} yourself, or set TRENDS_DATA to a folder that holds it.") from None
    if sha256 is not None and (got := sha256_of(tmp)) != sha256:
        tmp.unlink(missing_ok=True)
        raise UserError(f"download of {url} is damaged (sha256 {got[:12]}…, expected {sha256[:12]}…); "
                        "try again, or put a good copy at " + str(dest))
    os.replace(tmp, dest)
    return dest
