"""The figures of a `trends gnn` run: learning curves, a 2-D view of the learned node embeddings, the karate club."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from trends.records import plots
from trends.records.run import Run


def node_plots(run: Run, cfg: DictConfig, model, task, graph, hidden: torch.Tensor) -> None:
    """Accuracy and loss per epoch; embeddings (`hidden`: the layer before the classifier, PCA) coloured by true
    class; for the karate club, the graph itself coloured by predicted community."""
    records = run.history()
    name = f"{cfg.model.name.upper()} on {task.name}"
    plots.learning_curves(run.plots_dir / "accuracy.png", records, "acc", x="epoch", title=f"{name}: accuracy (%)")
    plots.learning_curves(run.plots_dir / "loss.png", records, "loss", x="epoch", title=f"{name}: loss")
    plots.scatter_pca(run.plots_dir / "embeddings.png", hidden, task.y,
                      title=f"{name}: node embeddings (PCA), coloured by class",
                      class_names=[f"class {c}" for c in range(task.num_classes)])
    if task.name == "karate":
        model.eval()
        with torch.no_grad():
            pred = model(task.x, graph).argmax(-1).cpu()
        draw_graph(run.plots_dir / "karate.png", task.edge_index.cpu(), pred, task.masks["train"].cpu(),
                   title=f"Karate club: communities predicted by {cfg.model.name.upper()} from 4 labels "
                         f"({(pred == task.y.cpu()).float().mean():.0%} right)")


def draw_graph(path, edge_index: torch.Tensor, colour: torch.Tensor, ringed: torch.Tensor, *, title: str):
    """Nodes in a spring layout coloured by `colour`; the nodes in `ringed` (the labelled ones) circled in black."""
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(colour.numel()))
    graph.add_edges_from(edge_index.T.tolist())
    pos = nx.spring_layout(graph, seed=0)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.3)
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colour.tolist(), cmap="tab10", vmin=0, vmax=9,
                           node_size=180, edgecolors=["black" if r else "none" for r in ringed.tolist()],
                           linewidths=2)
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return plots.save(fig, path)


def depth_plots(plots_dir, lines: dict[str, list[dict]]) -> None:
    """From a depth sweep's rows per model (depth.py): test accuracy against depth with ± one std over seeds, and
    the two oversmoothing measures of the last hidden layer against depth."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, rows in lines.items():
        ax.errorbar([r["layers"] for r in rows], [r["test_acc"] for r in rows], [r["test_acc_std"] for r in rows],
                    marker="o", capsize=3, label=label)
    _depth_axis(ax, lines)
    ax.set(ylabel="test accuracy (%)",
           title="accuracy against depth (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    plots.save(fig, plots_dir / "accuracy_vs_depth.png")

    fig, (energy, cosine) = plt.subplots(1, 2, figsize=(10, 4))
    for label, rows in lines.items():
        depths = [r["layers"] for r in rows]
        energy.plot(depths, [r["normalized_energy"] for r in rows], marker="o", label=label)
        cosine.plot(depths, [r["mean_cosine"] for r in rows], marker="o", label=label)
    energy.set(ylabel="Dirichlet energy / mean squared norm",
               title="how far apart neighbours stay (higher: less smoothed)")
    cosine.set(ylabel="mean cosine similarity of node pairs", title="how alike all nodes are (1: one direction)")
    for ax in (energy, cosine):
        _depth_axis(ax, lines)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("oversmoothing of the last hidden layer at the picked epoch (mean over seeds)", fontsize=10)
    plots.save(fig, plots_dir / "oversmoothing_vs_depth.png")


def _depth_axis(ax, lines: dict[str, list[dict]]) -> None:
    """Depth on a log-2 axis, ticked at the depths run, labelled as numbers."""
    depths = sorted({r["layers"] for rows in lines.values() for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("layers")
