"""`trends gnn`: smoke runs through the CLI, short real runs on Cora and MUTAG (read from ../shared/data, which is
read-only: processing must happen in the cache), the sweep's seed table, resume, and the errors users can hit."""
from __future__ import annotations

import csv
import json

import pytest
import torch
from omegaconf import OmegaConf

from helpers import TRENDS, ctrl_c_after_first_checkpoint, run_dirs, shared, summary, trends

from trends.gnn.data import stratified_folds, synthetic_node_task
from trends.gnn.models import NodeNet



def test_smoke_node_classification(workdir, cli):
    code, out = cli("gnn", "--smoke")
    assert code == 0, out
    [run] = run_dirs(workdir, "gnn")
    s = summary(run)
    assert s["status"] == "completed" and s["headline"] == "test_acc"
    assert s["metrics"]["test_acc"] > 60  # 3 classes: chance is 33%
    assert {"params", "device", "nodes", "edges"} <= set(s)
    for name in ("accuracy.png", "loss.png", "embeddings.png"):
        assert (run / "plots" / name).stat().st_size > 0
    assert (run / "checkpoints" / "last.pt").is_file()


def test_resume_continues_from_the_checkpoint(workdir, cli):
    assert cli("gnn", "--smoke", "--epochs", "20", "train.plots=false")[0] == 0
    [run] = run_dirs(workdir, "gnn")
    code, out = cli("gnn", "--resume", str(run), "--epochs", "30")
    assert code == 0, out
    epochs = [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r["split"] == "train"]
    assert epochs == list(range(1, 31))  # 1-20 from the first run, 21-30 after the resume, none twice
    assert summary(run)["resumed"] == 1


def test_smoke_graph_classification(workdir, cli):
    code, out = cli("gnn", "--smoke", "task=graph", "--epochs", "10")
    assert code == 0, out
    [run] = run_dirs(workdir, "gnn")
    s = summary(run)
    assert s["status"] == "completed" and s["folds"] == 3
    assert {"test_acc", "test_acc_std", "acc_best_epoch"} <= set(s["metrics"])
    assert (run / "plots" / "accuracy.png").is_file() and (run / "plots" / "embeddings.png").is_file()


def test_resuming_a_finished_cross_validation_trains_no_fold_again(workdir, cli):
    assert cli("gnn", "--smoke", "task=graph", "--epochs", "4", "train.plots=false")[0] == 0
    [run] = run_dirs(workdir, "gnn")
    before = summary(run)
    lines = (run / "metrics.jsonl").read_text()
    code, out = cli("gnn", "--resume", str(run))
    assert code == 0, out
    assert (run / "metrics.jsonl").read_text() == lines  # every fold came from the checkpoint
    assert summary(run)["metrics"] == before["metrics"] and summary(run)["resumed"] == 1


def test_ctrl_c_during_cross_validation_resumes_as_if_never_stopped(workdir):
    """The first checkpoint is the end of fold 1; Ctrl-C lands in a later fold, whose model, optimizer, batch
    order and RNG come back from the checkpoint: every logged point equals an uninterrupted run's."""
    args = ["gnn", "--smoke", "task=graph", "--epochs", "20", "train.plots=false"]
    straight = trends(*args, cwd=workdir, env={"TRENDS_OUTPUTS": "straight"})
    assert straight.returncode == 0, straight.stderr
    [reference] = (workdir / "straight" / "gnn").iterdir()
    code, err = ctrl_c_after_first_checkpoint([*TRENDS, *args], "gnn", workdir)
    assert code == 130, err
    [run] = run_dirs(workdir, "gnn")
    assert summary(run)["status"] == "interrupted"
    resumed = trends("gnn", "--resume", str(run), cwd=workdir)
    assert resumed.returncode == 0, resumed.stderr

    def points(run_dir):
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed"}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert points(run) == points(reference)
    assert summary(run)["fold_acc"] == summary(reference)["fold_acc"] and summary(run)["resumed"] == 1


def test_karate_club(workdir, cli):
    code, out = cli("gnn", "data=karate", "--epochs", "60")
    assert code == 0, out
    [run] = run_dirs(workdir, "gnn")
    assert summary(run)["metrics"]["test_acc"] > 50  # 4 communities from 4 labels; chance is 25%
    assert (run / "plots" / "karate.png").stat().st_size > 0


def test_cora_message_passing_beats_mlp_and_sweep_aggregates_seeds(workdir, cli):
    root = shared("Cora", "raw").parent.parent
    code, out = cli("gnn", "-m", "model=mlp,gcn", "seed=0,1", f"data.root={root}", "--epochs", "60",
                    "train.plots=false")
    assert code == 0, out
    [sweep] = list((workdir / "outputs" / "gnn" / "multirun").iterdir())
    with open(sweep / "sweep_by_seed.csv") as f:
        rows = {next(o for o in r["overrides"].split() if o.startswith("model=")): r for r in csv.DictReader(f)}
    assert set(rows) == {"model=mlp", "model=gcn"} and all(r["seeds"] == "2" for r in rows.values())
    mean = {k: float(r["test_acc"].split(" ± ")[0]) for k, r in rows.items()}
    assert mean["model=gcn"] > 75 and mean["model=gcn"] > mean["model=mlp"] + 10, mean
    assert "±" in (sweep / "sweep.md").read_text()
    # The shared root is read-only: torch_geometric processed Cora in the cache, never beside the raw files.
    assert not (root / "Cora" / "processed").exists()
    assert (workdir / "cache" / "trends" / "data" / "Cora" / "processed").is_dir()


def test_mutag_cross_validation(workdir, cli):
    root = shared("MUTAG", "raw").parent.parent
    code, out = cli("gnn", "task=graph", f"data.root={root}", "train.folds=3", "--epochs", "10",
                    "train.plots=false")
    assert code == 0, out
    [run] = run_dirs(workdir, "gnn")
    s = summary(run)
    assert s["graphs"] == 188 and len(s["fold_acc"]) == 3
    assert s["metrics"]["test_acc"] > 70  # the majority class is 66.5%


@pytest.mark.parametrize("data, expected", [("cora", "ind.cora."), ("mutag", "MUTAG_")])
def test_offline_without_a_copy_says_which_files_to_put_where(workdir, cli, data, expected):
    empty = workdir / "empty"
    task = ["task=graph"] if data == "mutag" else []
    code, out = cli("gnn", *task, f"data={data}", f"data.root={empty}")
    assert code == 2, out
    assert expected in out and str(empty) in out and "Traceback" not in out
    assert run_dirs(workdir, "gnn") == []  # bad input leaves no half-made run


@pytest.mark.parametrize("override, option", [("model=transformer", "gat"), ("data=imagenet", "citeseer"),
                                              ("task=edge", "graph")])
def test_unknown_choice_lists_the_options(workdir, cli, override, option):
    code, out = cli("gnn", override)
    assert code == 2
    assert option in out and "Traceback" not in out


def test_wrong_task_for_the_data_is_a_user_error(workdir, cli):
    code, out = cli("gnn", "data=mutag")
    assert code == 2 and "task=graph" in out


def test_stratified_folds_partition_and_balance():
    y = torch.tensor([0] * 63 + [1] * 125)
    folds = stratified_folds(y, 10, torch.Generator().manual_seed(0))
    everything = torch.cat(folds)
    assert len(everything) == len(y) and len(set(everything.tolist())) == len(y)  # disjoint, covering
    assert {len(f) for f in folds} <= {18, 19, 20}
    assert all(6 <= int((y[f] == 0).sum()) <= 7 for f in folds)  # each fold keeps the 1:2 balance


@pytest.mark.parametrize("name", ["gcn", "gat", "mlp", "sage"])
def test_sparse_inputs_give_the_same_model(name):
    """Keeping X sparse (gcn, gat, mlp) and aggregating by sparse adjacency (sage) are speed-ups only: the
    forward pass equals the dense, per-edge one."""
    cfg = OmegaConf.create({"graph_seed": 0, "num_nodes": 60, "num_classes": 3, "num_features": 30, "words": 3,
                            "signal": 0.5, "p_in": 0.2, "p_out": 0.02, "train_per_class": 5, "num_val": 10,
                            "sparse_features": True, "name": "synthetic"})
    task = synthetic_node_task(cfg)
    model_cfg = OmegaConf.create({"name": name, "hidden": 4, "heads": 2, "out_heads": 1, "layers": 2,
                                  "dropout": 0.5, "attn_dropout": 0.5, "act": "elu"})
    torch.manual_seed(0)
    model = NodeNet(model_cfg, 30, 3).eval()
    assert task.x.is_sparse
    dense = model(task.x.to_dense(), task.edge_index)
    if model.sparse_input:
        torch.testing.assert_close(model(task.x, task.edge_index), dense)
    if model.adjacency_input:
        torch.testing.assert_close(model(task.x.to_dense(), task.adjacency()), dense)
