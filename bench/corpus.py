"""Corpora larger than memory: `trends lm` on a 100 MB and a 1 GB text, each run twice with a fresh cache — the
first run encodes the text into the id file, the second reuses it.

    python bench/corpus.py                          # 100 MB and 1 GB texts in a temporary folder (≈ 3 min)
    python bench/corpus.py --sizes 100 --keep DIR   # only 100 MB; keep the texts in DIR for the next time

The texts are Tiny Shakespeare repeated, each copy followed by a line with multi-byte characters (so Python holds
the text at 4 bytes a character, the worst case), from $TRENDS_DATA. Per run: seconds from launch until training
starts (the log's "GPT … params" line, written after the data and the model are ready), wall seconds in all,
peak resident memory of the process, and the encoding's own seconds. Each run trains `train.steps=20` at the
default size and evaluates as usual.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_text(path: Path, megabytes: int, source: Path) -> None:
    if path.exists() and path.stat().st_size >= megabytes * 10**6:
        return
    copy = source.read_text(encoding="utf-8")
    with open(path, "w", encoding="utf-8") as f:
        written, i = 0, 0
        while written < megabytes * 10**6:
            block = f"{copy}\n[copy {i}: café — π ≈ 3.14159 😀]\n"
            f.write(block)
            written, i = written + len(block.encode()), i + 1


def timed_run(text: Path, cache: Path, outputs: Path) -> dict:
    """`trends lm` on `text`: seconds to the first step, wall seconds, peak RSS (GB) of the process."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "TRENDS_OUTPUTS": str(outputs), "COLUMNS": "200"}
    tic = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "trends", "lm", "data=text", f"data.path={text}",
                             "train.steps=20"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    started = None
    for line in proc.stdout:
        if started is None and " params on " in line:
            started = time.perf_counter() - tic
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"trends lm failed on {text} (status {status})")
    return {"to_training_s": started, "wall_s": time.perf_counter() - tic, "peak_rss_gb": usage.ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="text sizes in MB")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the texts (default: a temporary one)")
    args = parser.parse_args()
    source = Path(os.environ.get("TRENDS_DATA", REPO.parent / "shared" / "data")) / "tinyshakespeare" / "input.txt"
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'text':>8s} {'run':>7s} {'to training':>12s} {'wall':>7s} {'peak RSS':>9s} {'encoding':>9s}")
        for size in args.sizes:
            text = folder / f"text_{size}mb.txt"
            make_text(text, size, source)
            cache, outputs = Path(scratch) / f"cache_{size}", Path(scratch) / f"outputs_{size}"
            for run in ("first", "second"):
                r = timed_run(text, cache, outputs)
                (meta,) = [json.loads(p.read_text()) for p in (cache / "trends" / "corpora").glob("*.json")]
                encoding = f"{meta['encode_seconds']:8.1f}s" if run == "first" else f"{'cached':>9s}"
                print(f"{size:6d}MB {run:>7s} {r['to_training_s']:11.1f}s {r['wall_s']:6.1f}s "
                      f"{r['peak_rss_gb']:7.2f}GB {encoding}", flush=True)


if __name__ == "__main__":
    main()
