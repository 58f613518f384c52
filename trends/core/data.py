"""The data root and verified downloads.

Layout of a root (the one `../shared/data` has): `<root>/tinyshakespeare/input.txt`, `<root>/Cora/raw/...`,
`<root>/MUTAG/raw/...`, torchvision's own folders. A read-only root is read, never written: anything a demo must
write (downloads, processed files) goes to the user cache instead.
"""
from __future__ import annotations

import hashlib
import os
import socket
import sys
import urllib.error
from pathlib import Path

from trends.errors import UserError


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
    """Download `url` to `dest` unless a verified copy is there. torch.hub's downloader writes a temporary file
    beside `dest`, checks the sha256 and only then moves it into place (a broken download never stands at `dest`);
    it has no timeout of its own, so one is set around it: offline behind a firewall that drops packets, a download
    would otherwise wait for ever."""
    from torch.hub import download_url_to_file

    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        download_url_to_file(url, str(dest), hash_prefix=sha256, progress=sys.stderr.isatty())
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"could not download {url} ({reason}).\n"
                        f"Put the file at {dest} yourself, or set TRENDS_DATA to a folder that holds it.") from None
    except RuntimeError as err:  # torch.hub's "invalid hash value"
        raise UserError(f"download of {url} is damaged ({err}); try again, or put a good copy at {dest}") from None
    finally:
        socket.setdefaulttimeout(previous)
    return dest
