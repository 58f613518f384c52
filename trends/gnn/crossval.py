"""Graph classification: stratified k-fold cross-validation, a fresh model trained on k-1 folds and scored on the
held-out one, k times. The accuracy reported is each held-out fold's at the last epoch (no epoch is picked by
looking at test folds), mean ± std over folds; the GIN paper's protocol (the epoch with the best mean accuracy
across folds, optimistic) is reported beside it as `acc_best_epoch`.
"""
from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from trends.core.device import describe
from trends.core.loop import Loop, TrainState
from trends.core.meter import Meter
from trends.core.modules import num_params
from trends.core.precision import Precision
from trends.core.seed import derive_seed
from trends.gnn.data import load_graph_dataset, stratified_folds
from trends.gnn.findings import graph_finding
from trends.gnn.models import GraphNet, param_groups
from trends.records import plots
from trends.records.run import Run

log = logging.getLogger("trends.gnn")


@dataclass
class FoldsState(TrainState):
    """`step`: the epochs done over all folds (fold × epochs + epoch)."""
    fold: int = 0  # the fold in progress
    curve: list = field(default_factory=list)  # its held-out accuracy after each epoch
    final_acc: list = field(default_factory=list)  # per finished fold: the held-out accuracy at the last epoch
    curves: list = field(default_factory=list)  # per finished fold: its curve


def cross_validate(cfg: DictConfig, loop: Loop) -> None:
    run, device, t = loop.run, loop.device, cfg.train
    dataset = load_graph_dataset(cfg.data)
    # A plain list of graphs already on the device: indexing a torch_geometric dataset rebuilds each graph on
    # every access, which would cost more than training on molecules this small.
    graphs = [g.to(device) for g in dataset]
    y = torch.cat([g.y for g in graphs]).cpu()
    num_classes, in_dim = int(y.max()) + 1, graphs[0].num_node_features
    folds = stratified_folds(y, t.folds, torch.Generator().manual_seed(cfg.seed))
    # Built before the resume, as before the first fold: a run resumed between folds draws the next fold's
    # initial weights from the global RNG just where the uninterrupted run did.
    model = GraphNet(cfg.model, in_dim, num_classes)
    # One meter over every fold (a step is an epoch): a progress line every log_every epochs and at each fold's end.
    meter = loop.meter(t.folds * t.epochs, log_every=t.log_every, epoch=t.epochs)
    loop.track(streams={"meter": meter})
    if cfg.resume:
        loop.resume()
    run.update(params=num_params(model), device=describe(device), headline="test_acc", task="graph",
               graphs=len(graphs), classes=num_classes, features=in_dim, folds=t.folds)
    log.info("%d-fold cross-validation of %s on %s: %d graphs, %d classes, %d params on %s", t.folds,
             cfg.model.name.upper(), cfg.data.name, len(graphs), num_classes, num_params(model), describe(device))

    state = loop.state
    with loop.progress(t.folds * t.epochs, unit="epoch") as progress:
        while state.fold < t.folds:
            fold = state.fold
            held_out = set(folds[fold].tolist())
            train_graphs = [g for i, g in enumerate(graphs) if i not in held_out]
            test_batch = Batch.from_data_list([graphs[i] for i in folds[fold].tolist()])
            model = GraphNet(cfg.model, in_dim, num_classes).to(device)
            optimizer = torch.optim.Adam(param_groups(model, cfg.optim),
                                         lr=cfg.optim.lr)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, t.lr_step, t.lr_gamma)
            order = torch.Generator().manual_seed(derive_seed(cfg.seed, "fold", fold))  # this fold's batches
            loop.track(model=model, optimizer=optimizer, scheduler=scheduler, streams={"order": order, "meter": meter})
            loader = DataLoader(train_graphs, batch_size=t.batch_size, shuffle=True, generator=order)
            for step in meter.steps(until=(fold + 1) * t.epochs):
                epoch = step - fold * t.epochs
                train_loss, train_acc = train_epoch(model, loader, optimizer, loop.precision)
                scheduler.step()
                meter.trained(train_loss)  # NaN or inf ends the run as diverged
                test_loss, test_acc = evaluate(model, test_batch, loop.precision)
                state.curve.append(test_acc)
                run.log(step, "train", epoch=epoch, fold=fold, loss=round(train_loss, 5), acc=round(train_acc, 3))
                run.log(step, "test", epoch=epoch, fold=fold, loss=round(test_loss, 5), acc=round(test_acc, 3))
                if meter.recording:
                    progress.note(f"fold {fold + 1}/{t.folds} epoch {epoch}: loss {train_loss:.3f}  "
                                  f"train {train_acc:.1f}%  test {test_acc:.1f}%")
            state.final_acc.append(state.curve[-1])
            state.curves.append(state.curve)
            log.info("fold %d/%d: test accuracy %.1f%% (%d graphs)", fold + 1, t.folds, state.curve[-1],
                     len(held_out))
            state.fold, state.curve = fold + 1, []
            loop.track(streams={"meter": meter})  # between folds a checkpoint holds the results, meter and RNG
            loop.checkpoint()  # a finished fold is never trained again

    loop.finish(lambda: finish(run, cfg, model, graphs, y, state, meter))


def train_epoch(model: GraphNet, loader: DataLoader, optimizer, precision: Precision) -> tuple[float, float]:
    """One pass over the training graphs: (mean cross-entropy, accuracy in %) as seen during training."""
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            out = model(batch.x, batch.edge_index, batch.batch).float()
        loss = F.cross_entropy(out, batch.y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * batch.num_graphs
        correct += int((out.argmax(-1) == batch.y).sum())
        count += batch.num_graphs
    return total_loss / count, 100.0 * correct / count


@torch.no_grad()
def evaluate(model: GraphNet, batch: Batch, precision: Precision) -> tuple[float, float]:
    model.eval()
    with precision.autocast():
        out = model(batch.x, batch.edge_index, batch.batch).float()
    return F.cross_entropy(out, batch.y).item(), 100.0 * (out.argmax(-1) == batch.y).float().mean().item()


def finish(run: Run, cfg: DictConfig, model: GraphNet, graphs: list, y: torch.Tensor, state: FoldsState,
           meter: Meter) -> None:
    """Mean ± std over folds, the GIN-protocol number, curves and a 2-D view of the graph embeddings."""
    accs, curves = state.final_acc, state.curves
    mean_curve = [statistics.fmean(c[e] for c in curves) for e in range(len(curves[0]))]
    best_epoch = max(range(len(mean_curve)), key=mean_curve.__getitem__)
    epoch_ms = 1000 / meter.rate  # the mean training epoch
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
            pooled = model.embed(everything.x, everything.edge_index, everything.batch)
        plots.scatter_pca(run.plots_dir / "embeddings.png", pooled, y,
                          title=f"{cfg.model.name.upper()} graph embeddings (PCA, last fold's model)",
                          class_names=[f"class {c}" for c in range(int(y.max()) + 1)])
    run.update(metrics={
        "test_acc": round(statistics.fmean(accs), 2),
        "test_acc_std": round(statistics.stdev(accs), 2),
        "acc_best_epoch": round(mean_curve[best_epoch], 2),
        "epoch_ms": round(epoch_ms, 2),
    }, best_mean_epoch=best_epoch + 1, fold_acc=[round(a, 2) for a in accs])
    run.update(finding=graph_finding(run.summary, cfg.model.name, cfg.data.name))
    log.info("%d-fold accuracy %.2f ± %.2f%% (last epoch); at the best mean epoch (%d, the GIN paper's "
             "protocol): %.2f%%",
             len(accs), statistics.fmean(accs), statistics.stdev(accs), best_epoch + 1, mean_curve[best_epoch])
