"""`trends gnn`: smoke runs through the CLI, short real runs on Cora and MUTAG (read from ../shared/data, which is
read-only), the sweep's seed table, resume, the errors users can hit, and the checks on what torch_geometric may read:
raw files with their pinned sha256, from the data root or a download, processed where nothing planted is loaded."""
from __future__ import annotations

import csv
import functools
import http.server
import json
import os
import shutil
import socket
import threading
import zipfile

import pytest
import torch
from omegaconf import OmegaConf

from helpers import TRENDS, ctrl_c_after_first_checkpoint, run_dirs, shared, summary, trends

from trends.errors import UserError
from trends.gnn.data import RAW_SHA256, load_graph_dataset, load_node_task, stratified_folds, synthetic_node_task
from trends.gnn.depth import dirichlet_energy, mean_cosine_similarity, normalized_dirichlet_energy
from trends.gnn.models import NodeNet, dropout, node_model


def _sweep_table(workdir, name: str):
    """The one gnn sweep's folder under workdir, and the rows of its table `name`."""
    [sweep] = list((workdir / "outputs" / "gnn" / "multirun").iterdir())
    with open(sweep / name) as f:
        return sweep, list(csv.DictReader(f))


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


def test_smoke_deep_models_stop_early_and_record_how_smooth_their_last_layer_is(workdir, cli):
    code, out = cli("gnn", "-m", "--smoke", "model=appnp,gcnii", "model.layers=4", "--epochs", "300",
                    "train.patience=20", "train.plots=false")
    assert code == 0, out
    runs = [r for r in run_dirs(workdir, "gnn") if r.name.isdigit()]  # the jobs (no depth analysis: one depth)
    assert len(runs) == 2 and not (runs[0].parent / "summary.json").exists()
    for run in runs:
        s = summary(run)
        m = s["metrics"]
        assert s["status"] == "completed" and m["test_acc"] > 60, (run, m)  # 3 classes: chance is 33%
        assert 0 < m["dirichlet_energy"] and -1 <= m["mean_cosine"] <= 1
        epochs = [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                  if r["split"] == "train"]
        assert epochs[-1] < 300 and epochs[-1] == s["picked_epoch"] + 20, (epochs[-1], s["picked_epoch"])


def test_depth_sweep_on_cora_shows_gcn_oversmoothing_and_gcnii_holding(workdir, cli):
    """The depth analysis through the CLI on the real Cora, short: at 16 layers GCN has lost most of what it had at
    2, its nodes' features collapsed together (the energy falls), while GCNII keeps them apart."""
    root = shared("Cora", "raw").parent.parent
    code, out = cli("gnn", "-m", "model=gcn,gcnii", "model.layers=2,16", f"data.root={root}", "--epochs", "60",
                    "train.plots=false")
    assert code == 0, out
    sweep, rows = _sweep_table(workdir, "depth.csv")
    rows = {(r["model"], int(r["layers"])): r for r in rows}
    assert set(rows) == {("gcn", 2), ("gcn", 16), ("gcnii", 2), ("gcnii", 16)}
    acc = {k: float(r["test_acc"]) for k, r in rows.items()}
    cosine = {k: float(r["mean_cosine"]) for k, r in rows.items()}
    assert acc[("gcn", 16)] <= acc[("gcn", 2)] - 10 and acc[("gcnii", 16)] >= acc[("gcn", 16)] + 20, acc
    assert cosine[("gcn", 16)] > 0.95 > cosine[("gcn", 2)], cosine  # GCN's nodes all point one way
    s = summary(sweep)
    assert s["status"] == "completed" and s["lead_plot"] == "accuracy_vs_depth.png"
    assert "GCN on cora falls" in s["finding"], s["finding"]
    for name in ("accuracy_vs_depth.png", "oversmoothing_vs_depth.png"):
        assert (sweep / "plots" / name).stat().st_size > 0
    page = (sweep / "report.html").read_text()
    assert "accuracy_vs_depth.png" in page and "normalized_energy" in page


def test_oversmoothing_measures_on_equal_and_distinct_features():
    path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # 0 - 1 - 2, both directions
    equal = torch.ones(3, 4)
    assert dirichlet_energy(equal, path) == 0 and normalized_dirichlet_energy(equal, path) == 0
    assert mean_cosine_similarity(equal) == pytest.approx(1)
    distinct = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    # edges 0-1 and 1-2 both ways: (2 + 2 + 1 + 1) / 3 nodes; cosines of the pairs: 0, 0, 1
    assert dirichlet_energy(distinct, path) == pytest.approx(6 / 3)
    assert normalized_dirichlet_energy(distinct, path) == pytest.approx(2 / (6 / 3))  # mean squared norm: 6 / 3
    assert normalized_dirichlet_energy(10 * distinct, path) == pytest.approx(1)  # scale-free; the energy is not
    assert mean_cosine_similarity(distinct) == pytest.approx(1 / 3)
    # a node ReLU zeroed has no direction: left out of the pairs
    assert mean_cosine_similarity(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]])) == pytest.approx(1)


def test_dropout_keeps_one_minus_p_and_rescales():
    x = torch.ones(1_000_000)
    y = dropout(x, 0.6, training=True)
    assert set(y.unique().tolist()) == {0.0, 2.5}
    assert (y > 0).float().mean().item() == pytest.approx(0.4, abs=0.003)
    assert torch.equal(dropout(x, 0.6, training=False), x)
    sparse = torch.eye(500).to_sparse_coo().coalesce()
    dropped = dropout(sparse, 0.5, training=True)
    assert dropped._nnz() == 500 and set(dropped.values().unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("name", ["gcnii", "appnp"])
def test_deep_models_propagate_as_torch_geometric_does(name):
    """GCNII and APPNP aggregate over the normalised adjacency by SymmetricPropagation (its backward is a second
    product with the same matrix): forward and gradients equal torch_geometric's own per-edge propagation."""
    task = synthetic_node_task(OmegaConf.create({
        "graph_seed": 0, "num_nodes": 60, "num_classes": 3, "num_features": 30, "words": 3, "signal": 0.5,
        "p_in": 0.2, "p_out": 0.02, "train_per_class": 5, "num_val": 10, "sparse_features": False,
        "name": "synthetic"}))
    cfg = OmegaConf.create({"name": name, "hidden": 8, "layers": 4, "alpha": 0.1, "theta": 0.5, "dropout": 0.0})
    torch.manual_seed(0)
    model = node_model(cfg, 30, 3)
    ours = model(task.x, task.graph(model.graph_input))
    ours_grads = torch.autograd.grad(ours.square().sum(), list(model.parameters()))
    propagators = model.convs if name == "gcnii" else [model.propagate]
    for layer in propagators:
        layer.normalize = True  # torch_geometric normalises edge_index itself and sends one message per edge
    theirs = model(task.x, task.edge_index)
    theirs_grads = torch.autograd.grad(theirs.square().sum(), list(model.parameters()))
    torch.testing.assert_close(ours, theirs)
    for a, b in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(a, b)


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
    sweep, rows = _sweep_table(workdir, "sweep_by_seed.csv")
    rows = {next(o for o in r["overrides"].split() if o.startswith("model=")): r for r in rows}
    assert set(rows) == {"model=mlp", "model=gcn"} and all(r["seeds"] == "2" for r in rows.values())
    mean = {k: float(r["test_acc"].split(" ± ")[0]) for k, r in rows.items()}
    assert mean["model=gcn"] > 75 and mean["model=gcn"] > mean["model=mlp"] + 10, mean
    assert "±" in (sweep / "sweep.md").read_text()
    # torch_geometric processed Cora in a private folder, gone since: never beside the raw files, nor in the cache.
    assert not (root / "Cora" / "processed").exists()
    assert not list((workdir / "cache").glob("**/processed"))


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
    """The download fails for sure, online or not: data.url names a port nothing listens on."""
    empty = workdir / "empty"
    task = ["task=graph"] if data == "mutag" else []
    code, out = cli("gnn", *task, f"data={data}", f"data.root={empty}", f"data.url=http://127.0.0.1:{closed_port()}")
    assert code == 2, out
    assert "the download failed (ClientConnectorError" in out, out
    assert expected in out and str(empty) in out and "Traceback" not in out
    assert run_dirs(workdir, "gnn") == []  # bad input leaves no half-made run


def closed_port() -> int:
    """A local port nothing listens on: bound, then released (connecting is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graph_root(target, *names: str):
    """A writable data root under `target` with copies of the shared raw files of each dataset in `names`."""
    for name in names:
        shutil.copytree(shared(name, "raw"), target / name / "raw")
    return target


class Planted:
    """Unpickled, makes the folder `path`: proof that a file was loaded as code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


@pytest.mark.parametrize("name, file, args", [("Cora", "ind.cora.graph", []),
                                              ("MUTAG", "MUTAG_A.txt", ["task=graph", "data=mutag"])])
def test_a_tampered_raw_file_is_refused_before_anything_reads_it(workdir, cli, name, file, args):
    root = graph_root(workdir / "data", name)
    marker = workdir / "code-ran"
    torch.save(Planted(marker), root / name / "raw" / file)  # a pickle that runs code when unpickled
    code, out = cli("gnn", *args, f"data.root={root}")
    assert code == 2, out
    assert out.strip().splitlines()[-1] == (f"error: {root / name / 'raw' / file} is not the file trends expects "
                                            f"(sha256 {RAW_SHA256[name][file]}): delete it to download it again, or "
                                            "restore the original")
    assert out.count("error") == 1 and "Traceback" not in out
    assert not marker.exists() and run_dirs(workdir, "gnn") == []
    assert not (root / name / "processed").exists()


def test_processed_files_planted_beside_the_raw_files_are_never_loaded(workdir):
    """torch_geometric would read back a processed/ folder it finds, pre_transform.pt with weights_only=False:
    the one planted here ran code before the raw files were copied into a private folder to be processed."""
    root = graph_root(workdir / "data", "Cora")
    (root / "Cora" / "processed").mkdir()
    for file in ("pre_transform.pt", "pre_filter.pt", "data.pt"):
        torch.save(Planted(workdir / f"code-ran-{file}"), root / "Cora" / "processed" / file)
    task = load_node_task(OmegaConf.create({"kind": "planetoid", "name": "cora", "pyg_name": "Cora",
                                            "root": str(root), "normalize_features": False,
                                            "sparse_features": False}))
    assert task.num_nodes == 2708 and task.x.shape == (2708, 1433)
    assert not list(workdir.glob("code-ran-*"))


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server standing in for the datasets' sources (data.url): Cora's files, MUTAG's zip. Yields
    (url, folder served). torch_geometric caches a zip while it extracts it under $PYG_HOME: here, not in ~."""
    monkeypatch.setenv("PYG_HOME", str(tmp_path / "pyg"))
    served = tmp_path / "mirror"
    shutil.copytree(shared("Cora", "raw"), served)
    with zipfile.ZipFile(served / "MUTAG.zip", "w") as z:
        for f in shared("MUTAG", "raw").iterdir():
            z.write(f, f"MUTAG/{f.name}")
    handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=served))
    server.handle_error = lambda *a: None  # a client that stops reading early is no test failure
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


def test_a_download_is_checked_before_it_is_kept(workdir, mirror):
    url, _ = mirror
    cora = OmegaConf.create({"kind": "planetoid", "name": "cora", "pyg_name": "Cora", "root": str(workdir / "data"),
                             "url": url, "download_timeout": 10, "normalize_features": False,
                             "sparse_features": False})
    assert load_node_task(cora).num_nodes == 2708
    mutag = OmegaConf.create({"kind": "tu", "name": "mutag", "pyg_name": "MUTAG", "root": str(workdir / "data"),
                              "url": url, "download_timeout": 10, "node_attr": False})
    assert len(load_graph_dataset(mutag)) == 188
    for name in ("Cora", "MUTAG"):  # the raw files and nothing else, beside nothing else
        assert sorted(p.name for p in (workdir / "data" / name).iterdir()) == ["raw"]
        assert sorted(p.name for p in (workdir / "data" / name / "raw").iterdir()) == sorted(RAW_SHA256[name])


def test_an_altered_download_is_refused_and_nothing_kept(workdir, mirror):
    url, served = mirror
    torch.save(Planted(workdir / "code-ran"), served / "ind.cora.ty")
    cora = OmegaConf.create({"kind": "planetoid", "name": "cora", "pyg_name": "Cora", "root": str(workdir / "data"),
                             "url": url, "download_timeout": 10, "normalize_features": False,
                             "sparse_features": False})
    pin = RAW_SHA256["Cora"]["ind.cora.ty"]
    with pytest.raises(UserError, match=f"ind.cora.ty, sha256 {pin}.*nothing was kept"):
        load_node_task(cora)
    assert list((workdir / "data" / "Cora").iterdir()) == [workdir / "data" / "Cora" / "raw"]
    assert not list((workdir / "data" / "Cora" / "raw").iterdir()) and not (workdir / "code-ran").exists()


@pytest.mark.parametrize("name, size", [("Cora", 2708), ("CiteSeer", 3327), ("MUTAG", 188), ("PROTEINS", 1113)])
def test_every_pinned_dataset_loads_from_a_read_only_root(workdir, name, size):
    """The pins are those of the shared copies, and every file torch_geometric needs is among them."""
    root = shared(name, "raw").parent.parent
    cfg = {"name": name.lower(), "pyg_name": name, "root": str(root)}
    if name in ("Cora", "CiteSeer"):
        cfg.update(kind="planetoid", normalize_features=False, sparse_features=False)
        assert load_node_task(OmegaConf.create(cfg)).num_nodes == size
    else:
        assert len(load_graph_dataset(OmegaConf.create({**cfg, "kind": "tu", "node_attr": False}))) == size
    assert not (workdir / "cache").exists()  # nothing downloaded, nothing processed into the cache


def test_a_dataset_without_pinned_checksums_is_refused(workdir, cli):
    code, out = cli("gnn", "data=pubmed")
    assert code == 2 and "no sha256 is pinned for PubMed's raw files" in out and "Traceback" not in out


@pytest.mark.parametrize("override, option", [("model=transformer", "gat"), ("data=imagenet", "citeseer"),
                                              ("task=edge", "graph")])
def test_unknown_choice_lists_the_options(workdir, cli, override, option):
    code, out = cli("gnn", override)
    assert code == 2
    assert option in out and "Traceback" not in out


def test_wrong_task_for_the_data_is_a_user_error(workdir, cli):
    code, out = cli("gnn", "data=mutag")
    assert code == 2 and "task=graph" in out


def test_a_node_classifier_on_the_graph_task_is_a_user_error(workdir, cli):
    code, out = cli("gnn", "task=graph", "model=gcnii", "data=synthetic")
    assert code == 2 and "model=gcnii classifies the nodes of one graph" in out and "Traceback" not in out
    assert not (workdir / "outputs").exists() or not run_dirs(workdir, "gnn")


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
    assert model.sparse_input or model.graph_input == "adjacency", f"{name}: neither sparse X nor a sparse adjacency"
    dense = model(task.x.to_dense(), task.edge_index)
    if model.sparse_input:
        torch.testing.assert_close(model(task.x, task.edge_index), dense)
    if model.graph_input == "adjacency":
        torch.testing.assert_close(model(task.x.to_dense(), task.adjacency()), dense)
