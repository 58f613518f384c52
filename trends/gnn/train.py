"""`trends gnn`: node classification on one graph (here), graph classification by cross-validation (crossval.py).

Node classification reads like torch_geometric's examples/gcn.py: full-batch training on the labelled nodes,
one evaluation of every split per epoch, test accuracy reported at the epoch picked by validation. The shared
scaffolding (resume, checkpoints, the NaN guard, Ctrl-C) is trends.core.loop's, the measuring (the time of a training
epoch, progress, the cadence of progress lines) its meter's.
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from trends.core.device import describe
from trends.core.loop import Loop, TrainState
from trends.core.meter import Meter
from trends.core.modules import num_params
from trends.core.precision import Precision
from trends.core.schedule import whole_epochs
from trends.core.seed import seed_everything
from trends.errors import UserError
from trends.gnn import plots
from trends.gnn.crossval import FoldsState, cross_validate
from trends.gnn.data import NodeTask, load_node_task
from trends.gnn.depth import oversmoothing
from trends.gnn.findings import node_finding
from trends.gnn.models import NODE_MODELS, node_model, param_groups
from trends.records.run import Run

log = logging.getLogger("trends.gnn")


@dataclass
class NodeState(TrainState):
    """`step`: the epochs done."""
    best: dict | None = None  # the picked epoch: its number, every split's loss and accuracy
    best_model: dict | None = None  # the picked epoch's weights (a state_dict), for the plots


def main(cfg: DictConfig, run: Run) -> None:
    whole_epochs(cfg.train.epochs)
    graphs = cfg.task == "graph"
    if graphs and cfg.model.name in NODE_MODELS:
        raise UserError(f"model={cfg.model.name} classifies the nodes of one graph (task=node); for task=graph use "
                        "model=gin, gcn, sage, gat or mlp")
    loop = Loop(run, cfg.device, FoldsState() if graphs else NodeState(), cfg.train.amp)
    seed_everything(cfg.seed, cfg.deterministic)
    threads = torch.get_num_threads()
    if loop.device.type == "cpu" and cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        (cross_validate if graphs else train_nodes)(cfg, loop)
    finally:
        torch.set_num_threads(threads)  # the setting is process-wide: leave it as found


def train_nodes(cfg: DictConfig, loop: Loop) -> None:
    run, device, t = loop.run, loop.device, cfg.train
    task = load_node_task(cfg.data)
    model = node_model(cfg.model, task.x.size(1), task.num_classes)
    if task.x.is_sparse and not model.sparse_input:
        task.x = task.x.to_dense()  # SAGE and GIN gather neighbours' raw features: they need a dense X
    graph = task.graph(model.graph_input).to(device)
    task = task.to(device)
    model.to(device)
    optimizer = torch.optim.Adam(param_groups(model, cfg.optim), lr=cfg.optim.lr)
    meter = loop.meter(t.epochs, log_every=t.log_every, warmup=10)  # a step is an epoch; the first 10 warm up
    loop.track(model=model, optimizer=optimizer, streams={"meter": meter})
    if cfg.resume:
        loop.resume()

    forward = loop.compile(model, t.compile)
    run.update(params=num_params(model), device=describe(device), headline="test_acc", task="node",
               nodes=task.num_nodes, edges=task.edge_index.size(1) // 2, features=task.x.size(1),
               classes=task.num_classes, **{f"{k}_nodes": int(m.sum()) for k, m in task.masks.items()})
    log.info("%s on %s: %d nodes, %d edges, %d features, %d classes; %s with %d params on %s",
             cfg.model.name.upper(), task.name, task.num_nodes, task.edge_index.size(1) // 2, task.x.size(1),
             task.num_classes, cfg.model.name, num_params(model), describe(device))

    state, train_mask, y = loop.state, task.masks["train"], task.y
    with loop.progress(t.epochs, unit="epoch") as progress:
        for epoch in meter.steps():
            model.train()
            optimizer.zero_grad(set_to_none=True)
            with loop.precision.autocast():
                out = forward(task.x, graph)
            loss = F.cross_entropy(out[train_mask].float(), y[train_mask])
            loss.backward()
            optimizer.step()
            loss_value = meter.trained(loss)

            scores = evaluate(forward, task, graph, loop.precision)
            for split, (split_loss, acc) in scores.items():
                run.log(epoch, split, epoch=epoch, loss=round(split_loss, 5), acc=round(acc, 3))
            if _better(scores, state.best, t.select):
                state.best = {"epoch": epoch, **{f"{s}_{m}": v for s, (l, a) in scores.items()
                                                 for m, v in (("loss", l), ("acc", a))}}
                state.best_model = copy.deepcopy(model.state_dict())
            if meter.recording:
                b = state.best
                accs = "  ".join(f"{s} {a:.1f}%" for s, (_, a) in scores.items() if s != "train")
                progress.note(f"epoch {epoch}: loss {loss_value:.3f}  {accs}  "
                              f"(picked: epoch {b['epoch']}, test {b['test_acc']:.1f}%)")
            if meter.due(t.checkpoint_every):
                loop.checkpoint()
            if t.patience and epoch - state.best["epoch"] >= t.patience:
                log.info("early stop at epoch %d: no better validation for %d epochs", epoch, t.patience)
                break

    loop.finish(lambda: finish(run, cfg, model, task, graph, state, meter))


@torch.no_grad()
def evaluate(forward, task: NodeTask, graph, precision: Precision) -> dict[str, tuple[float, float]]:
    """(cross-entropy, accuracy in %) of every split with nodes, from one full-graph forward pass."""
    forward.eval()
    with precision.autocast():
        out = forward(task.x, graph).float()
    pred = out.argmax(dim=-1)
    scores = {}
    for split, mask in task.masks.items():
        if mask.any():
            scores[split] = (F.cross_entropy(out[mask], task.y[mask]).item(),
                             100.0 * (pred[mask] == task.y[mask]).float().mean().item())
    return scores


def _better(scores: dict, best: dict | None, select: str) -> bool:
    """Is this epoch the one to report? Highest val accuracy; `acc_then_loss` breaks ties by lower val loss;
    `loss`: lowest val loss (GCNII's rule). Without validation nodes (karate club) the last epoch is reported."""
    if best is None or "val" not in scores:
        return True
    loss, acc = scores["val"]
    if select == "acc":
        return acc > best["val_acc"]
    if select == "acc_then_loss":
        return acc > best["val_acc"] or (acc == best["val_acc"] and loss < best["val_loss"])
    if select == "loss":
        return loss < best["val_loss"]
    raise UserError(f"train.select={select}: use acc, acc_then_loss or loss")


def finish(run: Run, cfg: DictConfig, model: torch.nn.Module, task: NodeTask, graph, state: NodeState,
           meter: Meter) -> None:
    """From the picked epoch's weights: the plots, how smooth the last hidden layer is, the summary's metrics."""
    best = state.best
    last = {r["split"]: r for r in run.history() if r["epoch"] == state.step}
    epoch_ms = 1000 / meter.rate  # the mean training epoch after warm-up
    model.load_state_dict(state.best_model)
    model.eval()
    with torch.no_grad():
        hidden = model.embed(task.x, graph)  # the last hidden layer
    if cfg.train.plots:
        plots.node_plots(run, cfg, model, task, graph, hidden)
    metrics = {"test_acc": round(best["test_acc"], 2), "val_acc": round(best.get("val_acc", math.nan), 2),
               "train_acc": round(best["train_acc"], 2), "final_test_acc": round(last["test"]["acc"], 2),
               "best_epoch": best["epoch"], "epoch_ms": round(epoch_ms, 2), **oversmoothing(hidden, task.edge_index)}
    run.update(picked_epoch=best["epoch"], metrics={k: v for k, v in metrics.items() if not math.isnan(v)})
    run.update(finding=node_finding(run.summary, cfg.model.name, task.name))
    how = "picked by validation" if "val_acc" in best else "the last: no validation nodes"
    log.info("test accuracy %.2f%% at epoch %d (%s), %.2f%% at the last epoch; %.1f ms per training epoch",
             best["test_acc"], best["epoch"], how, last["test"]["acc"], epoch_ms)
