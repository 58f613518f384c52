"""Beyond one process: torchrun (gloo on CPU) shares one run folder; launcher plugins run sweeps."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import ctrl_c_after_first_checkpoint, run_dirs, summary, trends

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "trends"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=ONE_THREAD)



# -- the collectives, in two real gloo processes -------------------------------------------------------------------
def _linear_batchnorm() -> torch.nn.Module:
    layers = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5))
    torch.nn.init.uniform_(layers[1].weight)  # not all ones: the affine part is tested too
    return layers


def _gradients_worker(rank: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    from trends.contrastive.loss import nt_xent
    from trends.core.distributed import Dist, data_parallel, gather_rows, gather_with_gradient, shutdown

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    d = Dist(rank, 2)
    torch.manual_seed(0)
    encoder = torch.nn.Linear(6, 4)
    first, second = torch.randn(8, 6), torch.randn(8, 6)
    mine = slice(rank * 4, rank * 4 + 4)
    parallel = data_parallel(encoder, d)
    loss = nt_xent(gather_with_gradient(parallel(first[mine])), gather_with_gradient(parallel(second[mine])), 0.5)
    loss.backward()
    normed = _linear_batchnorm()
    x = torch.randn(8, 6)
    parallel_normed = data_parallel(normed, d)  # (kept: DDP's gradient hooks live as long as it does)
    (parallel_normed(x[mine]) ** 3).sum().backward()  # each rank's own loss: DDP averages the two
    rows = gather_rows(torch.arange(10.0)[d.share(10)][:, None])  # ranks hold 5 rows each…
    uneven = gather_rows(torch.arange(3.0)[d.share(3)][:, None])  # …and 2 and 1
    if rank == 0:
        torch.save({"loss": loss.detach(), "grad": encoder.weight.grad, "rows": rows, "uneven": uneven,
                    "normed_grads": [p.grad for p in normed.parameters()], "running_var": normed[1].running_var},
                   out_file)
    shutdown()


def test_gathered_embeddings_give_one_process_gradients_and_rows_come_back_in_order(tmp_path):
    torch.multiprocessing.spawn(_gradients_worker, args=(str(tmp_path / "init"), str(tmp_path / "out.pt")), nprocs=2)
    two = torch.load(tmp_path / "out.pt", weights_only=True)

    from trends.contrastive.loss import nt_xent

    torch.manual_seed(0)
    encoder = torch.nn.Linear(6, 4)
    first, second = torch.randn(8, 6), torch.randn(8, 6)
    loss = nt_xent(encoder(first), encoder(second), 0.5)  # one process, the whole batch
    loss.backward()
    assert torch.allclose(two["loss"], loss.detach())
    assert torch.allclose(two["grad"], encoder.weight.grad, atol=1e-6)  # not world × or ÷ world of it
    assert two["rows"].flatten().tolist() == list(range(10))
    normed = _linear_batchnorm()
    ((normed(torch.randn(8, 6)) ** 3).sum() / 2).backward()  # statistics of the global batch, mean of 2 losses
    for got, expected in zip(two["normed_grads"], normed.parameters()):
        assert torch.allclose(got, expected.grad, atol=1e-5)  # also through the mean and variance
    assert torch.allclose(two["running_var"], normed[1].running_var, atol=1e-6)
    assert two["uneven"].flatten().tolist() == [0.0, 1.0, 2.0]


# -- whole runs ----------------------------------------------------------------------------------------------------
# (overrides, metric compared, tolerance). train.batch_size is the global batch, so the same overrides give one
# process and two the same batches' worth of data; the runs differ in each rank's own random draws (windows, crops)
# only, so the metrics agree statistically.
MATCHES = {
    "lm": (["--smoke", "train.steps=40", "train.eval_every=20", "train.batch_size=8"], "final_val_loss", 0.1),
    "vit-vs-cnn": (["--smoke", "models=[resnet]", "data.fractions=[1.0]", "train.steps=40"], "test_loss", 0.15),
}


@pytest.mark.parametrize("command", MATCHES)
def test_two_processes_match_one_with_the_same_global_batch(workdir, command):
    overrides, metric, tolerance = MATCHES[command]
    ddp = _torchrun(command, *overrides, cwd=workdir)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    run = _one_torchrun_folder(workdir, command)
    single = trends(command, *overrides, cwd=workdir, env={"TRENDS_OUTPUTS": "single"})
    assert single.returncode == 0, single.stderr
    (reference,) = (workdir / "single" / command).iterdir()
    assert abs(_metric(summary(run), metric) - _metric(summary(reference), metric)) < tolerance
    if command == "lm":
        assert summary(run)["tokens_per_step"] == summary(reference)["tokens_per_step"] == 8 * 32
    odd = _torchrun(command, *overrides, "train.batch_size=7", cwd=workdir)
    assert odd.returncode != 0 and "split evenly over 2 processes" in odd.stderr


# Views without randomness (full-image crops, no flips, no colour changes): two processes then compute the very
# same loss over the global batch as one (NT-Xent, VICReg's variances and covariances), step for step, until float
# rounding (sums in another order) grows.
SAME_VIEWS = ["aug.scale=[1,1]", "aug.ratio=[1,1]", "aug.flip=0", "aug.jitter_p=0", "aug.grayscale_p=0"]


# negatives (the default's multi-crop SimCLR: two forward passes through DDP per step) and batch statistics, both
# gathered; the small views, full images at 16 × 16, without randomness either
@pytest.mark.parametrize("method", ["simclr_multicrop", "vicreg"])
def test_two_processes_take_the_steps_of_one_process(workdir, method):
    same_views = [*SAME_VIEWS, "method.small_scale=[1,1]"] if method == "simclr_multicrop" else SAME_VIEWS
    overrides = ["--smoke", f"method={method}", "train.epochs=1", "train.log_every=1", "eval.probe.epochs=0",
                 "eval.supervised.epochs=0", "train.amp=false", *same_views]  # fp32: bf16's rounding would hide it
    ddp = _torchrun("contrastive", *overrides, cwd=workdir)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    run = _one_torchrun_folder(workdir, "contrastive")
    single = trends("contrastive", *overrides, cwd=workdir, env={"TRENDS_OUTPUTS": "single"})
    assert single.returncode == 0, single.stderr
    (reference,) = (workdir / "single" / "contrastive").iterdir()
    two, one = _train_losses(run), _train_losses(reference)
    assert len(two) == len(one) == 8
    assert two[:4] == pytest.approx(one[:4], rel=5e-4)  # wrong negatives or BatchNorm per rank: off at step 1
    recorded = summary(run)
    assert recorded["batch_size"] == 64 and recorded["metrics"]["knn_acc"] > recorded["metrics"]["random_init_knn_acc"]


# Long enough for Ctrl-C to land mid-run, soon after the first checkpoint; (overrides, each rank's RNG streams in
# the checkpoint). BYOL: a momentum target, which the checkpoint must carry and every rank must move alike. Pretext
# shares contrastive's vision pipeline under torchrun, and every demo the core loop that saves and restores the ranks;
# each demo's own resume is tested in one process (test_<demo>.py).
INTERRUPTED = {
    "contrastive": (["--smoke", "method=byol", "train.epochs=8", "eval.probe.epochs=0", "eval.supervised.epochs=0"],
                    lambda saved: saved["ranks"]),
}


@pytest.mark.parametrize("command", INTERRUPTED)
def test_ctrl_c_stops_every_rank_and_resume_continues_exactly(workdir, command):
    overrides, rank_streams = INTERRUPTED[command]
    straight = subprocess.run([*TORCHRUN, command, *overrides], cwd=workdir, capture_output=True, text=True,
                              timeout=300, env={**ONE_THREAD, "TRENDS_OUTPUTS": "straight"})
    assert straight.returncode == 0, straight.stderr[-2000:]
    (reference,) = (workdir / "straight" / command).iterdir()

    # Ctrl-C in a terminal reaches torchrun and both workers (one process group); torchrun then signals them again.
    code, err = ctrl_c_after_first_checkpoint([*TORCHRUN, command, *overrides], command, workdir, ONE_THREAD,
                                              whole_group=True)
    assert code != 0
    (run,) = (workdir / "outputs" / command).iterdir()
    assert summary(run)["status"] == "interrupted" and "--resume" in err
    assert len(rank_streams(torch.load(run / "checkpoints" / "last.pt", weights_only=True))) == 2
    single = trends(command, "--resume", str(run), cwd=workdir)
    assert single.returncode == 2 and "2 processes" in single.stderr  # it needs as many ranks as it had

    resumed = subprocess.run([*TORCHRUN, command, "--resume", str(run)], cwd=workdir, capture_output=True,
                             text=True, timeout=300, env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final, expected = summary(run), summary(reference)
    assert final["status"] == "completed" and final["resumed"] == 1 and final["world_size"] == 2
    assert final["metrics"][final["headline"]] == expected["metrics"][expected["headline"]]
    assert _train_losses(run) == _train_losses(reference)  # every logged loss, across the interruption


def _one_torchrun_folder(workdir, command: str):
    (run,) = run_dirs(workdir, command)  # one folder for both ranks
    assert run.name.startswith("torchrun_")
    assert len(list(run.glob("*.log"))) == 2 and len(list(run.glob("*.rank1.log"))) == 1  # rank 1 logs apart
    recorded = summary(run)
    assert recorded["status"] == "completed" and recorded["world_size"] == 2
    return run


def _train_losses(run) -> list[float]:
    records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r["loss"] for r in records if r["split"] == "train"]


def _metric(recorded: dict, name: str) -> float:
    if name in recorded.get("metrics", {}):
        return recorded["metrics"][name]
    (cell,) = recorded["cells"]  # vit-vs-cnn: one (model, fraction) cell
    return cell[name]


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
