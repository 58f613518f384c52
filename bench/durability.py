"""What never losing a run costs: the `running` summary, its update at each checkpoint, the fsyncs of the atomic
writer and the folder's lock, against the wall time of the default `trends lm`.

    python bench/durability.py            # the default `trends lm` once, then each added write timed 20 times
    python bench/durability.py --smoke    # the same on the smoke run (seconds; the ratio means little there)

A whole-run A/B comparison cannot resolve 1 % on a machine that drifts 20–40 % within minutes, so the bench times
what was added, in alternation with what it replaced, on the very files a default run writes (its checkpoint, its
summary, its metrics), and multiplies by how often a run does it. Needs Tiny Shakespeare under $TRENDS_DATA
(default ../shared/data).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trends.core.checkpoint import save_checkpoint  # noqa: E402
from trends.records import lock  # noqa: E402
from trends.records.files import sync, write_json_atomic  # noqa: E402


def timed(action, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trends-durability-"))
    env = {**os.environ, "TRENDS_OUTPUTS": str(work / "outputs")}
    env.setdefault("TRENDS_DATA", str((REPO.parent / "shared" / "data").resolve()))
    command = [sys.executable, "-m", "trends", "lm", *(["--smoke"] if args.smoke else [])]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    (run,) = (work / "outputs" / "lm").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    steps, every = summary["total_steps"], summary["eval_every"] if "eval_every" in summary else None
    checkpoints = len([line for line in (run / "metrics.jsonl").read_text().splitlines()
                       if json.loads(line)["split"] == "val"])  # one checkpoint per evaluation
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    size = (run / "checkpoints" / "last.pt").stat().st_size

    scratch = work / "scratch"
    (scratch / "checkpoints").mkdir(parents=True)
    shutil.copy(run / "metrics.jsonl", scratch / "metrics.jsonl")

    def before() -> None:  # the checkpoint as it was written until issue 25: temp file and rename, no fsync
        tmp = scratch / "checkpoints" / ".last.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, scratch / "checkpoints" / "last.pt")

    def after() -> None:  # now: fsync of the file and of its folder
        save_checkpoint(scratch / "checkpoints" / "last.pt", state)

    def summary_update() -> None:  # Run.checkpointed: the metrics synced, the summary rewritten
        sync(scratch / "metrics.jsonl")
        write_json_atomic(scratch / "summary.json", summary)

    def locking() -> None:
        with lock.hold(scratch, "lm"):
            pass

    old, new, upd, lck = [], [], [], []
    for _ in range(args.rounds):  # in alternation: the machine's drift hits both alike
        old += timed(before, 1)
        new += timed(after, 1)
        upd += timed(summary_update, 1)
        lck += timed(locking, 1)
    med = statistics.median
    per_checkpoint = max(0.0, med(new) - med(old)) + med(upd)
    added = checkpoints * per_checkpoint + med(upd) + med(lck)  # + the `running` summary at the first step
    print(f"trends lm{' --smoke' if args.smoke else ''}: {wall:.1f} s wall, {steps} steps, {checkpoints} checkpoints "
          f"of {size / 1e6:.2f} MB" + (f" (every {every})" if every else ""))
    print(f"checkpoint write: {med(old) * 1e3:.2f} ms before, {med(new) * 1e3:.2f} ms with fsync "
          f"(median of {args.rounds})")
    print(f"summary update + metrics fsync: {med(upd) * 1e3:.2f} ms; lock: {med(lck) * 1e3:.3f} ms")
    print(f"added per run: {added * 1e3:.1f} ms = {100 * added / wall:.3f} % of the wall time")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
