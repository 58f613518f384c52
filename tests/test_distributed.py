"""Beyond one process: torchrun (gloo on CPU) shares one run folder; launcher plugins run sweeps."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import run_dirs, trends

SMOKE = ["--smoke", "train.steps=40", "train.eval_every=20"]


def _torchrun(*args: str, cwd, nproc: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                           "-m", "cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_two_process_lm_matches_one_process_with_the_same_global_batch(workdir):
    ddp = _torchrun("lm", *SMOKE, "train.batch_size=4", cwd=workdir)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    (run,) = run_dirs(workdir, "lm")  # one folder for both ranks
    assert run.name.startswith("torchrun_")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["tokens_per_step"] == 2 * 4 * 32  # global batch: both ranks' windows

    single = trends("lm", *SMOKE, "train.batch_size=8", cwd=workdir, env={"TRENDS_OUTPUTS": "single"})
    assert single.returncode == 0, single.stderr
    (reference,) = (workdir / "single" / "lm").iterdir()
    expected = json.loads((reference / "summary.json").read_text())
    assert abs(summary["metrics"]["final_val_loss"] - expected["metrics"]["final_val_loss"]) < 0.1


def test_joblib_launcher_runs_jobs_in_parallel_processes(workdir):
    result = trends("lm", "--smoke", "-m", "seed=0,1", "train.steps=4", "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "lm" / "multirun").iterdir()
    assert len((sweep / "sweep.csv").read_text().strip().splitlines()) == 1 + 2


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(workdir):
    # n_head=3 does not divide n_embd=32: that job fails, the others complete, the table has all three.
    result = trends("lm", "--smoke", "-m", "model.n_head=2,3,4", "train.steps=4", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "lm" / "multirun").iterdir()
    summaries = [json.loads((job / "summary.json").read_text()) for job in sweep.iterdir() if job.is_dir()]
    assert sorted(s["status"] for s in summaries) == ["completed", "completed", "failed"]
    (failed,) = [s for s in summaries if s["status"] == "failed"]
    assert "model.n_head=3" in failed["overrides"] and "divisible" in failed["error"]
    assert "failed" in (sweep / "sweep.csv").read_text()


def test_submitit_local_launcher_runs_the_sweep_and_slurm_composes(workdir):
    result = trends("lm", "--smoke", "-m", "seed=0,1", "train.steps=4", "hydra/launcher=submitit_local",
                    cwd=workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "lm" / "multirun").iterdir()
    assert len((sweep / "sweep.csv").read_text().strip().splitlines()) == 1 + 2
    slurm = trends("lm", "--smoke", "--cfg", "hydra/launcher=submitit_slurm", cwd=workdir)  # no SLURM here
    assert slurm.returncode == 0, slurm.stderr
