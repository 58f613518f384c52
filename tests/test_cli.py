"""The runner itself: help, option mistakes, config printing, bad input, run folders, sweeps, the wheel."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO, run_dirs, trends


def test_help_lists_every_command(cli):
    code, out = cli("--help")
    assert code == 0
    for command in ("contrastive", "gnn", "lm", "vit-vs-cnn", "sample", "runs"):
        assert command in out


def test_cli_module_does_not_import_torch_hydra_or_omegaconf():
    # `trends --help` must stay instant: torch (~1.6 s to import) is loaded only when a demo runs, Hydra and
    # OmegaConf only when a config is composed or read.
    code = ("import sys, trends.cli.main; "
            "assert not {'torch', 'hydra', 'omegaconf'} & set(sys.modules), 'cli imported torch, hydra or omegaconf'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_mistyped_option_gets_a_suggestion(workdir):
    result = trends("lm", "--epoch", "3", cwd=workdir)
    assert result.returncode == 2
    assert "No such option" in result.stderr and "--epochs" in result.stderr
    assert "Traceback" not in result.stderr


def test_cfg_prints_composed_config_and_creates_nothing(workdir):
    result = trends("lm", "--cfg", "model.n_layer=6", "--epochs", "3", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "n_layer: 6" in result.stdout and "epochs: 3" in result.stdout
    assert not (workdir / "outputs").exists()


@pytest.mark.parametrize("args, needle", [
    (["model.n_lyr=6"], "n_lyr"),                                        # unknown key
    (["optim.lr=abc"], "optim.lr must be a number"),                     # wrong type
    (["model=bogus"], "available options of model: gpt"),               # unknown group option
    (["data=text", "data.path=/no/such/file.txt"], "does not exist"),    # missing file
    (["data=text"], "data.path"),                                        # mandatory value not given
    (["train.amp=bf16"], "train.amp must be auto, true or false"),       # not a precision
])
def test_bad_input_is_one_short_message(workdir, args, needle):
    result = trends("lm", *args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((workdir / "outputs").glob("lm/*"))  # nothing half-written


def test_offline_download_says_where_to_put_the_file(workdir):
    result = trends("lm", f"data.root={workdir / 'empty'}", "data.url=http://127.0.0.1:9/input.txt",
                    "train.steps=1", cwd=workdir)
    assert result.returncode == 2
    assert "could not download" in result.stderr
    assert str(workdir / "empty" / "tinyshakespeare" / "input.txt") in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_outputs_is_a_clear_error(workdir):
    (workdir / "blocker").write_text("a file where a folder should be")
    result = trends("lm", "--smoke", cwd=workdir, env={"TRENDS_OUTPUTS": str(workdir / "blocker" / "outputs")})
    assert result.returncode == 2
    assert "cannot create the run folder" in result.stderr and "Traceback" not in result.stderr


def test_resume_rejects_a_folder_that_is_not_a_run(workdir):
    (workdir / "not_a_run").mkdir()
    result = trends("lm", "--resume", str(workdir / "not_a_run"), cwd=workdir)
    assert result.returncode == 2
    assert "not a run folder" in result.stderr and "Traceback" not in result.stderr


def test_resume_rejects_a_corrupt_checkpoint(workdir):
    assert trends("lm", "--smoke", cwd=workdir).returncode == 0
    (run,) = run_dirs(workdir, "lm")
    (run / "checkpoints" / "last.pt").write_bytes(b"\x00not a checkpoint")
    result = trends("lm", "--resume", str(run), cwd=workdir)
    assert result.returncode == 2
    assert "corrupt" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(workdir):
    result = trends("lm", "data=text", "data.path=/no/such/file.txt", "--debug", cwd=workdir)
    assert result.returncode != 0
    assert "Traceback" in result.stderr




def test_multirun_writes_one_folder_per_job_and_a_sweep_table(workdir):
    result = trends("lm", "--smoke", "-m", "model.n_embd=16,32", "seed=0,1", "train.steps=4", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "lm" / "multirun").iterdir()
    jobs = [p for p in sweep.iterdir() if p.is_dir()]
    assert len(jobs) == 4
    for job in jobs:
        assert json.loads((job / "summary.json").read_text())["status"] == "completed"
    rows = (sweep / "sweep.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4 and "best_val_loss" in rows[0]
    by_seed = (sweep / "sweep_by_seed.csv").read_text().strip().splitlines()
    assert len(by_seed) == 1 + 2  # two model sizes, each mean ± std over two seeds
    assert "±" in (sweep / "sweep.md").read_text()


def test_runs_lists_and_shows_runs(workdir, cli):
    assert trends("lm", "--smoke", cwd=workdir).returncode == 0
    code, out = cli("runs")
    assert code == 0 and "lm" in out and "completed" in out and "best_val_loss" in out
    (run,) = run_dirs(workdir, "lm")
    code, out = cli("runs", "show", str(run))
    assert code == 0 and "metrics.jsonl" in out and "n_layer" in out


def test_the_wheel_is_one_package_that_works_beside_other_cli_and_conf_packages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("trends_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["trends"]
    for required in ("trends/conf/common.yaml", "trends/conf/lm.yaml", "trends/conf/text/model/gpt.yaml",
                     "trends/conf/lm/experiment/smoke.yaml", "trends/text/smoke.txt", "trends/cli/main.py"):
        assert required in names, required
    # The wheel alone (its dependencies come from this environment), run from a project with its own `cli` and
    # `conf` packages and a conf/gnn.yaml of its own: every import and every config must still be ours.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    other = tmp_path / "other_project"
    for package in ("cli", "conf"):
        (other / package).mkdir(parents=True)
        (other / package / "__init__.py").write_text(f"raise ImportError('the other project\'s {package}')\n")
    (other / "conf" / "gnn.yaml").write_text("not_ours: true\n")
    env = {**os.environ, "PYTHONPATH": str(site), "TRENDS_OUTPUTS": str(other / "outputs")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=other, env=env, capture_output=True, text=True,
                              timeout=300)

    where = run("-c", "import trends; print(trends.__file__)")
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    assert run("-m", "trends", "--help").returncode == 0
    gnn = run("-m", "trends", "gnn", "--cfg")
    assert gnn.returncode == 0 and "model:" in gnn.stdout and "not_ours" not in gnn.stdout, gnn.stderr
    smoke = run("-m", "trends", "lm", "--smoke")
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    (summary,) = (other / "outputs" / "lm").glob("*/summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"


def test_in_process_calls_do_not_leak_state(workdir, cli, monkeypatch):
    code, _ = cli("lm", "--cfg")
    assert code == 0
    code, out = cli("lm", "model=bogus")  # a second call still gets the short message, not a traceback
    assert code == 2 and "available options of model" in out


def test_completion_offers_the_groups_of_every_config_folder_a_demo_searches():
    from trends.launch import DEMOS

    options = {demo.command: demo.group_options() for demo in DEMOS}
    for command in ("contrastive", "pretext"):  # data/ lives in the shared trends/conf/vision/
        assert {"data=imagefolder", "data=stl10", "model=resnet18", "experiment=smoke"} <= set(options[command])
        assert not [o for o in options[command] if o.startswith("encoder=")]  # chosen through model=, not typed
    assert {"task=relative_position", "task=rotation", "task=jigsaw"} <= set(options["pretext"])
    assert "task=node" in options["gnn"] and "data=shakespeare" in options["lm"]
    for command in ("lm", "scaling"):  # model/, data/, optim/ live in the shared trends/conf/text/
        assert {"data=text", "model=gpt", "optim=adamw", "experiment=smoke"} <= set(options[command])
    assert {"mode=ladder", "mode=isoflop", "experiment=gpu"} <= set(options["scaling"])
