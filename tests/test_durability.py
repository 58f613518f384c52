"""Never losing a run: what a kill, a torn line, a full disk, a second writer or a folder that carries code must not
cost (issue 25). Real runs and real signals; the one fault injected is the operating system's answer to fsync."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TRENDS, first_checkpoint, summary

from trends.errors import UserError
from trends.launch.folders import as_data
from trends.records import lock
from trends.records.files import write_atomic
from trends.records.layout import status_of
from trends.records.metrics import read_metrics
from trends.records.sweep import analysis_function

LONG = ["--smoke", "train.steps=200", "train.eval_every=50", "train.log_every=50"]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _val_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run, "val")}


def test_a_killed_run_is_listed_refused_to_a_second_writer_and_resumes_exactly(workdir, cli):
    """A live run holds its folder: a second --resume and a report rebuild are refused naming it, `trends runs`
    says running. Killed (SIGKILL, no chance to say goodbye) with a torn last metrics line, it is listed as killed
    at its checkpoint's step, its report still builds, and --resume ends exactly where an unbroken run ends."""
    code, output = cli("lm", *LONG, env={"TRENDS_OUTPUTS": "straight"})
    assert code == 0, output
    (straight,) = (workdir / "straight" / "lm").iterdir()

    proc = subprocess.Popen([*TRENDS, "lm", *LONG], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    run = first_checkpoint(proc, workdir, "lm").parent.parent
    proc.send_signal(signal.SIGSTOP)  # frozen mid-run: its lock stays held while the others knock
    try:
        assert summary(run)["status"] == "running" and summary(run)["pid"] == proc.pid
        assert status_of(run) == "running"
        code, output = cli("lm", "--resume", str(run))
        assert code == 2 and len(_lines(output)) == 1, output
        assert f"in use by process {proc.pid}" in output and "trends lm" in output
        code, output = cli("report", str(run))
        assert code == 2 and f"process {proc.pid}" in output, output
        code, output = cli("runs")
        assert code == 0 and "running" in output, output
    finally:
        proc.kill()
        proc.communicate()

    saved_step = summary(run)["checkpoint"]["step"]
    assert status_of(run) == "killed"
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 999, "epoch": null, "spl')  # the process died in the middle of an append
    code, output = cli("runs")
    assert code == 0 and "killed" in output and f"step {saved_step}" in output, output
    code, output = cli("report", str(run))
    assert code == 0 and (run / "report.html").is_file(), output

    code, output = cli("lm", "--resume", str(run))  # the dead process's lock is taken over
    assert code == 0, output
    final = summary(run)
    assert final["status"] == "completed" and final["resumed"] == 1 and final["pid"] == os.getpid()
    assert final["metrics"]["best_val_loss"] == summary(straight)["metrics"]["best_val_loss"]
    assert _val_losses(run) == _val_losses(straight)  # every point, none twice, the torn one gone
    assert not list(run.glob("**/*.tmp"))


@pytest.fixture
def full_disk_at_second_checkpoint(monkeypatch):
    """The disk fills up while the second checkpoint is written: fsync of its temporary file answers ENOSPC, as a
    filesystem with delayed allocation does. Everything else is written for real."""
    real_fsync, seen = os.fsync, []

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if Path(name).name.startswith(".last.pt."):
            seen.append(name)
            if len(seen) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell the checkpoint's file descriptor from the others")
    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_a_full_disk_keeps_the_folder_the_last_good_checkpoint_and_says_so_in_two_lines(workdir, cli,
                                                                                       full_disk_at_second_checkpoint):
    code, output = cli("lm", *LONG)
    assert code == 1, output
    lines = _lines(output.split("Traceback")[0])
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device writing" in errors[0] and "last.pt" in errors[0], output
    assert "Traceback" not in output
    (run,) = (workdir / "outputs" / "lm").iterdir()
    after = lines[lines.index(errors[0]) + 1]
    relative = run.relative_to(workdir)
    assert f"{relative} keeps its metrics and its checkpoint of step 50; once fixed: trends lm --resume {relative}" \
        == after, output

    import torch
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["state"]["step"] == 50  # the first checkpoint, whole; the second never replaced it
    assert not list(run.glob("**/*.tmp"))
    record = summary(run)
    assert record["status"] == "failed" and record["checkpoint"]["step"] == 50
    assert "No space left on device" in record["error"]
    assert [r["step"] for r in read_metrics(run, "val")][:2] == [50, 100]

    full_disk_at_second_checkpoint.append("freed")  # the disk has room again
    code, output = cli("lm", "--resume", str(run))
    assert code == 0, output
    assert summary(run)["status"] == "completed"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    write_atomic(target, '{"status": "running"}')

    def half_then_full(f) -> None:
        f.write(b'{"status": "compl')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as raised:
        write_atomic(target, half_then_full)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert target.read_text() == '{"status": "running"}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_damaged_line_before_the_last_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "split": "val"}\n{"step": \n{"step": 3, "split": "val"}\n')
    with pytest.raises(UserError, match="line 2 is damaged"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "split": "val"}\n{"step": 2, "sp')
    assert read_metrics(tmp_path) == [{"step": 1, "split": "val"}]


def test_a_lock_names_its_holder_and_is_taken_over_once_the_holder_is_dead(tmp_path):
    holder_code = ("import sys, time; from trends.records import lock\n"
                   f"with lock.hold(__import__('pathlib').Path({str(tmp_path)!r}), 'lm'):\n"
                   "    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", holder_code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert lock.holder(tmp_path)["pid"] == proc.pid
        with pytest.raises(UserError, match=f"in use by process {proc.pid} on .* \\(trends lm, since "):
            with lock.hold(tmp_path):
                pass
    finally:
        proc.kill()
        proc.communicate()
    assert lock.holder(tmp_path) is None
    with lock.hold(tmp_path, "gnn"):
        assert lock.holder(tmp_path)["pid"] == os.getpid()
        with lock.hold(tmp_path):  # re-entrant within one process: the launch, then the run
            pass
    assert lock.holder(tmp_path) is None


CRAFTED = ["+hydra.callbacks.x._target_=numpy.save", "+hydra.callbacks.x.file={pwned}",
           "+hydra.callbacks.x.arr=[1,2,3]"]


def test_resume_refuses_a_folder_whose_overrides_would_run_code(workdir, cli):
    code, output = cli("lm", "--smoke")
    assert code == 0, output
    (run,) = (workdir / "outputs" / "lm").iterdir()
    pwned = workdir / "pwned.npy"
    with (run / ".hydra" / "overrides.yaml").open("a") as f:
        f.writelines(f"- {line.format(pwned=pwned)}\n" for line in CRAFTED)
    before = (run / "summary.json").read_text()

    code, output = cli("lm", "--resume", str(run))
    assert code == 2 and len(_lines(output)) == 1, output
    assert "+hydra.callbacks.x._target_=numpy.save" in output and "run code" in output
    assert not pwned.exists() and not list(workdir.glob("pwned*"))
    assert (run / "summary.json").read_text() == before  # nothing touched


def test_resume_refuses_a_sweep_whose_record_would_run_code(workdir, cli):
    code, output = cli("gnn", "--smoke", "-m", "seed=0,1")
    assert code == 0, output
    (sweep,) = (workdir / "outputs" / "gnn" / "multirun").iterdir()
    record = (sweep / "multirun.yaml").read_text()
    pwned = workdir / "pwned.npy"
    crafted = "".join(f"    - {line.format(pwned=pwned)}\n" for line in CRAFTED)
    (sweep / "multirun.yaml").write_text(record.replace("    task:\n", "    task:\n" + crafted, 1))

    code, output = cli("gnn", "--resume", str(sweep))
    assert code == 2 and len(_lines(output)) == 1 and "run code" in output, output
    assert not pwned.exists()


@pytest.mark.parametrize("entry", ["hydra.run.dir=/tmp/x", "+hydra.callbacks.x._target_=os.system",
                                   "++hydra.job.chdir=true", "~hydra.callbacks", "hydra/launcher=joblib",
                                   "model@hydra.callbacks.x=gpt", "model._target_=os.system",
                                   "+extra={_target_: subprocess.call, args: [ls]}", "model._partial_=true"])
def test_a_folders_record_that_selects_code_is_refused(entry):
    with pytest.raises(UserError, match="would change Hydra or run code"):
        as_data(["model.n_layer=2", entry], Path("run/.hydra/overrides.yaml"))


def test_a_folders_record_of_the_demos_own_settings_is_read():
    entries = ["model.n_layer=2", "+experiment=smoke", "data=shakespeare", "seed=0", "train.steps=10"]
    assert as_data(entries, Path("overrides.yaml")) == entries


def test_a_sweep_analysis_names_only_trends_functions():
    assert analysis_function("trends.scaling.analysis.analyse_sweep").__name__ == "analyse_sweep"
    for name in ("numpy.save", "os.system", "builtins.exec", "trends"):
        with pytest.raises(UserError, match="not one of trends' analyses"):
            analysis_function(name)
    with pytest.raises(UserError, match="does not exist"):
        analysis_function("trends.scaling.analysis.nosuch")


def test_a_damaged_tour_state_is_kept_aside_and_said(tmp_path, capsys):
    from trends.cli.tour import _load_state

    (tmp_path / "tour.json").write_text('{"lm": {"status": "comp')
    assert _load_state(tmp_path) == {}
    assert (tmp_path / "tour.json.bak").read_text() == '{"lm": {"status": "comp'
    assert not (tmp_path / "tour.json").exists()
    assert "tour.json is damaged; kept as tour.json.bak" in capsys.readouterr().err
    assert _load_state(tmp_path) == {}  # no file: a first tour, nothing said
    assert capsys.readouterr().err == ""


def test_a_run_refused_before_its_first_step_leaves_nothing_but_one_that_began_keeps_its_folder(workdir, cli):
    code, output = cli("lm", "data=text", f"data.path={workdir / 'nothere.txt'}")  # found missing inside the run
    assert code == 2 and "nothere.txt does not exist" in output, output
    assert not (workdir / "outputs").exists()
    code, output = cli("lm", *LONG[:1], "train.steps=20", "train.eval_every=10", "optim.lr=1e6")
    assert code == 1 and "diverged" in output, output
    (run,) = (workdir / "outputs" / "lm").iterdir()
    record = summary(run)  # it began (a summary from its first step), so its folder stays: how it ended is data
    assert record["status"] == "diverged" and record["diverged_at_step"] >= 1 and record["pid"] == os.getpid()


def test_the_tour_page_reads_its_state_as_data(tmp_path):
    """What tour.json says is text on the page (escaped) and a run folder only inside the tour's own folder."""
    from trends.cli.tour import stages, write_page

    outside = tmp_path / "elsewhere"
    (outside / "secret").mkdir(parents=True)
    (outside / "secret" / "summary.json").write_text('{"status": "failed", "error": "<b>outside</b>"}')
    tour = tmp_path / "tour"
    tour.mkdir()
    chosen = stages()[:2]
    state = {chosen[0]["name"]: {"status": "<script>alert(1)</script>", "exit_code": "<script>x</script>",
                                 "command": "trends lm <script>y</script>", "seconds": "soon"},
             chosen[1]["name"]: {"status": "failed", "run": "../elsewhere/secret"}, "_total_seconds": "<i>"}
    page = write_page(tour, chosen, state, "smoke").read_text()
    assert "<script>alert" not in page and "<script>x" not in page and "<script>y" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "outside" not in page  # ../elsewhere is not the tour's: not read


def test_sigterm_saves_at_the_next_step_and_the_run_resumes(workdir, cli):
    """A cluster's time limit or `kill` sends SIGTERM before SIGKILL: the run saves at the end of the step it is in
    (not only at its last evaluation), says it was interrupted, and goes on with --resume."""
    proc = subprocess.Popen([*TRENDS, "lm", *LONG], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    run = first_checkpoint(proc, workdir, "lm").parent.parent
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "SIGTERM: saving a checkpoint" in out + err, out + err
    record = summary(run)
    assert record["status"] == "interrupted" and 50 <= record["checkpoint"]["step"] < 200
    code, output = cli("lm", "--resume", str(run))
    assert code == 0 and summary(run)["status"] == "completed", output
