"""How long `trends report` takes and how large its pages are: a 30-job sweep (gnn on its offline smoke graph,
3 models × 10 seeds, made once into a scratch folder), the sweep's page, one run's and a comparison's, each rebuilt
5 times in this process (median), then the whole `trends report SWEEP` command once.

    python bench/report.py [--jobs-folder DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trends.records.report import write_report  # noqa: E402


def make_sweep(folder: Path) -> Path:
    """30 jobs of `trends gnn --smoke -m model=mlp,gcn,sage seed=0,…,9` (seconds each)."""
    subprocess.run([sys.executable, "-m", "trends", "gnn", "--smoke", "-m", "model=mlp,gcn,sage",
                    "seed=" + ",".join(map(str, range(10)))], cwd=folder, check=True,
                   env={**os.environ, "TRENDS_OUTPUTS": str(folder / "outputs")}, stdout=subprocess.DEVNULL)
    (sweep,) = (folder / "outputs" / "gnn" / "multirun").iterdir()
    return sweep


def timed(paths: list[Path], out: Path, repeats: int = 5) -> tuple[float, int]:
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        write_report(paths, out)
        seconds.append(time.perf_counter() - tic)
    return statistics.median(seconds), out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs-folder", type=Path, help="an existing sweep folder instead of a new gnn sweep")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        sweep = args.jobs_folder or make_sweep(Path(scratch))
        jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.split("_")[0].isdigit())
        print(f"{'page':34s} {'median s':>9s} {'size':>10s}")
        for name, paths, out in (
                (f"sweep of {len(jobs)} jobs", [sweep], Path(scratch) / "sweep.html"),
                ("one run", [jobs[0]], Path(scratch) / "run.html"),
                ("comparison of 2 runs", jobs[:2], Path(scratch) / "compare.html")):
            seconds, size = timed(paths, out)
            print(f"{name:34s} {seconds:9.3f} {size / 1e3:8.0f} kB")
        tic = time.perf_counter()  # what a user waits for: the command, Python's start and imports included
        subprocess.run([sys.executable, "-m", "trends", "report", str(sweep)], check=True, stdout=subprocess.DEVNULL)
        print(f"{'`trends report SWEEP`, whole command':34s} {time.perf_counter() - tic:9.3f}")


if __name__ == "__main__":
    main()
