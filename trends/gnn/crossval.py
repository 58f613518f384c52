"""Graph classification: stratified k-fold cross-validation, a fresh model trained on k-1 folds and scored on the
held-out one, k times. The accuracy reported is each held-out fold's at the last epoch (no epoch is picked by
looking at test folds), mean ± std over folds; the GIN paper's protocol (the epoch with the best mean accuracy
across folds, optimistic) is reported beside it as `acc_best_epoch`.
"""
from __future__ import annotations

import logging
import math
import statistics
import time

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from trends.core import plots
from trends.core.checkpoint import load_checkpoint, load_state_dicts, save_checkpoint, state_dicts
from trends.core.device import autocast, describe
from trends.core.errors import Diverged, RunInterrupted
from trends.core.progress import Progress
from trends.core.run import Run
from trends.core.seed import capture_rng, restore_rng
from trends.gnn.data import load_graph_dataset, stratified_folds
from trends.gnn.models import GraphNet, num_params, param_groups
from trends.gnn.plots import pca_2d

log = logging.getLogger("trends.gnn")


def cross_validate(cfg: DictConfig, run: Run, device: torch.device) -> None:
    t = cfg.train
    dataset = load_graph_dataset(cfg.data)
    # A plain list of graphs already on the device: indexing a torch_geometric dataset rebuilds each graph on
    # every access, which would cost more than training on molecules this small.
    graphs = [g.to(device) for g in dataset]
    y = torch.cat([g.y for g in graphs]).cpu()
    num_classes, in_dim = int(y.max()) + 1, graphs[0].num_node_features
    folds = stratified_folds(y, t.folds, torch.Generator().manual_seed(cfg.seed))
    results = {"final_acc": [], "curves": [], "epoch_s": []}  # per finished fold
    resume = None
    if cfg.resume:
        resume = load_checkpoint(run.checkpoint_path, map_location=device)
        results = resume["results"]
        restore_rng(resume["rng"])
        run.rewind(resume["step"], resume["elapsed"])
        log.info("resumed at fold %d, epoch %d", resume["fold"] + 1, resume["epoch"])

    model = GraphNet(cfg.model, in_dim, num_classes)
    run.update(params=num_params(model), device=describe(device), headline="test_acc", task="graph",
               graphs=len(graphs), classes=num_classes, features=in_dim, folds=t.folds)
    log.info("%d-fold cross-validation of %s on %s: %d graphs, %d classes, %d params on %s", t.folds,
             cfg.model.name.upper(), cfg.data.name, len(graphs), num_classes, num_params(model), describe(device))

    first_fold = len(results["final_acc"])
    with Progress(t.folds * t.epochs, "gnn", completed=first_fold * t.epochs, unit="epoch") as progress:
        for fold in range(first_fold, t.folds):
            held_out = set(folds[fold].tolist())
            train_graphs = [g for i, g in enumerate(graphs) if i not in held_out]
            test_batch = Batch.from_data_list([graphs[i] for i in folds[fold].tolist()])
            model = GraphNet(cfg.model, in_dim, num_classes).to(device)
            optimizer = torch.optim.Adam(param_groups(model, cfg.optim.weight_decay, cfg.optim.decay),
                                         lr=cfg.optim.lr)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, t.lr_step, t.lr_gamma)
            order = torch.Generator().manual_seed(cfg.seed * 1000 + fold)  # shuffling of this fold's batches
            epoch, curve, epoch_s = 0, [], []
            if resume is not None and resume["fold"] == fold and resume["epoch"] > 0:
                load_state_dicts(resume, model=model, optimizer=optimizer, scheduler=scheduler)
                order.set_state(resume["order"])
                epoch, curve, epoch_s = resume["epoch"], resume["curve"], resume["epoch_s"]
            loader = DataLoader(train_graphs, batch_size=t.batch_size, shuffle=True, generator=order)

            def checkpoint(**fold_state) -> None:
                save_checkpoint(run.checkpoint_path, {
                    "fold": fold, "epoch": epoch, "step": fold * t.epochs + epoch, "results": results,
                    "rng": capture_rng(), "elapsed": run.elapsed, **fold_state})

            while epoch < t.epochs:
                tic = time.perf_counter()
                train_loss, train_acc = train_epoch(model, loader, optimizer, device, t.amp)
                scheduler.step()
                epoch_s.append(time.perf_counter() - tic)
                epoch += 1
                step = fold * t.epochs + epoch
                if not math.isfinite(train_loss):
                    raise Diverged(step, train_loss)
                test_loss, test_acc = evaluate(model, test_batch, device, t.amp)
                curve.append(test_acc)
                run.log(step, "train", epoch=epoch, fold=fold, loss=round(train_loss, 5), acc=round(train_acc, 3))
                run.log(step, "test", epoch=epoch, fold=fold, loss=round(test_loss, 5), acc=round(test_acc, 3))
                progress.advance(rate=1 / epoch_s[-1])
                if epoch % t.log_every == 0 or epoch == t.epochs:
                    progress.note(f"fold {fold + 1}/{t.folds} epoch {epoch}: loss {train_loss:.3f}  "
                                  f"train {train_acc:.1f}%  test {test_acc:.1f}%")
                if run.stop_requested:
                    checkpoint(**state_dicts(model=model, optimizer=optimizer, scheduler=scheduler),
                               order=order.get_state(), curve=curve, epoch_s=epoch_s)
                    raise RunInterrupted(step)
            results["final_acc"].append(curve[-1])
            results["curves"].append(curve)
            results["epoch_s"] += epoch_s
            log.info("fold %d/%d: test accuracy %.1f%% (%d graphs)", fold + 1, t.folds, curve[-1], len(held_out))
            fold, epoch = fold + 1, 0
            checkpoint()  # a finished fold is never trained again

    finish(run, cfg, model, graphs, y, results)


def train_epoch(model: GraphNet, loader: DataLoader, optimizer, device, amp: bool) -> tuple[float, float]:
    """One pass over the training graphs: (mean cross-entropy, accuracy in %) as seen during training."""
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            out = model(batch.x, batch.edge_index, batch.batch).float()
        loss = F.cross_entropy(out, batch.y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * batch.num_graphs
        correct += int((out.argmax(-1) == batch.y).sum())
        count += batch.num_graphs
    return total_loss / count, 100.0 * correct / count


@torch.no_grad()
def evaluate(model: GraphNet, batch: Batch, device, amp: bool) -> tuple[float, float]:
    model.eval()
    with autocast(device, amp):
        out = model(batch.x, batch.edge_index, batch.batch).float()
    return F.cross_entropy(out, batch.y).item(), 100.0 * (out.argmax(-1) == batch.y).float().mean().item()


def finish(run: Run, cfg: DictConfig, model: GraphNet, graphs: list, y: torch.Tensor, results: dict) -> None:
    """Mean ± std over folds, the GIN-protocol number, curves and a 2-D view of the graph embeddings."""
    accs, curves = results["final_acc"], results["curves"]
    mean_curve = [statistics.fmean(c[e] for c in curves) for e in range(len(curves[0]))]
    best_epoch = max(range(len(mean_curve)), key=mean_curve.__getitem__)
    epoch_ms = 1000 * statistics.median(results["epoch_s"])
    if cfg.train.plots:
        train = {}
        for r in run.history("train"):
            train.setdefault(r["epoch"], []).append(r["acc"])
        epochs = list(range(1, len(mean_curve) + 1))
        plots.line_plot(run.plots_dir / "accuracy.png", {
            "train (mean over folds)": (epochs, [statistics.fmean(train[e]) for e in epochs]),
            "held-out fold (mean over folds)": (epochs, mean_curve)}, xlabel="epoch", ylabel="accuracy (%)",
            title=f"{cfg.model.name.upper()} on {cfg.data.name}, {len(accs)}-fold CV: "
                  f"{statistics.fmean(accs):.1f} ± {statistics.stdev(accs):.1f}%")
        model.eval()
        with torch.no_grad():
            everything = Batch.from_data_list(graphs)
            pooled = model.embed(everything.x, everything.edge_index, everything.batch).float().cpu()
        plots.scatter_2d(run.plots_dir / "embeddings.png", pca_2d(pooled), y.numpy(),
                         title=f"{cfg.model.name.upper()} graph embeddings (PCA, last fold's model)",
                         class_names=[f"class {c}" for c in range(int(y.max()) + 1)])
    run.update(metrics={
        "test_acc": round(statistics.fmean(accs), 2),
        "test_acc_std": round(statistics.stdev(accs), 2),
        "acc_best_epoch": round(mean_curve[best_epoch], 2),
        "epoch_ms": round(epoch_ms, 2),
    }, best_mean_epoch=best_epoch + 1, fold_acc=[round(a, 2) for a in accs])
    log.info("%d-fold accuracy %.2f ± %.2f%% (last epoch); at the best mean epoch (%d, the GIN paper's "
             "protocol): %.2f%%",
             len(accs), statistics.fmean(accs), statistics.stdev(accs), best_epoch + 1, mean_curve[best_epoch])
