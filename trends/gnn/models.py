"""The models: a stack of torch_geometric message-passing layers, read out per node or pooled per graph.

`model.name` picks the layer: `mlp` (no edges: what the features alone give), `gcn` (Kipf & Welling 2017),
`sage` (Hamilton et al. 2017, mean aggregator), `gat` (Veličković et al. 2018), `gin` (Xu et al. 2019).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.nn import (
    MLP,
    GATConv,
    GCNConv,
    GINConv,
    Linear,
    SAGEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

# Layers whose first step is a linear map of x, which torch multiplies sparse-times-dense: with Cora's X (98.7%
# zeros) kept sparse, that matmul and its backward cost ~1% of the dense one. SAGE and GIN gather x of neighbours
# before any linear map, so they need a dense X.
SPARSE_INPUT = {"mlp", "gcn", "gat"}
# SAGE's mean over neighbours' raw features (3703 wide on CiteSeer) as one message per edge is a (E, F) tensor;
# given the sparse adjacency instead, torch_geometric aggregates by sparse matmul (2-3x faster, same numbers).
ADJACENCY_INPUT = {"sage"}
POOLS = {"add": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def make_layer(cfg: DictConfig, in_dim: int, out_dim: int, *, last: bool, cached: bool) -> nn.Module:
    """One layer `in_dim → out_dim` (GAT: `out_dim` per head, heads concatenated except in the last layer)."""
    if cfg.name == "mlp":
        return Linear(in_dim, out_dim, weight_initializer="glorot")  # glorot like the conv layers' own linear maps
    if cfg.name == "gcn":
        # cached: the normalised adjacency D^-1/2 (A+I) D^-1/2 is computed once, not every epoch (one fixed graph).
        return GCNConv(in_dim, out_dim, cached=cached)
    if cfg.name == "sage":
        return SAGEConv(in_dim, out_dim, aggr="mean")
    if cfg.name == "gat":
        heads = cfg.out_heads if last else cfg.heads
        return GATConv(in_dim, out_dim, heads=heads, concat=not last, dropout=cfg.attn_dropout)
    if cfg.name == "gin":
        return GINConv(MLP([in_dim, out_dim, out_dim], norm="batch_norm"), train_eps=cfg.train_eps)
    raise ValueError(f"unknown model {cfg.name}")  # Hydra only offers the names above


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """F.dropout that also takes a sparse (COO, coalesced) X: only stored entries are dropped (a zero stays zero
    either way), so it is the same random function at the cost of the non-zeros."""
    if not x.is_sparse:
        return F.dropout(x, p, training)
    if not training or p == 0:
        return x
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape, is_coalesced=True,
                                   check_invariants=False)  # same pattern as x, which was checked when made


class NodeNet(nn.Module):
    """`layers` layers; dropout before each, `act` between; logits (N, num_classes) for every node."""

    def __init__(self, cfg: DictConfig, in_dim: int, num_classes: int):
        super().__init__()
        width = cfg.hidden * (cfg.heads if cfg.name == "gat" else 1)
        dims = [in_dim] + [width] * (cfg.layers - 1)
        self.layers = nn.ModuleList(
            make_layer(cfg, d, num_classes if i == cfg.layers - 1 else cfg.hidden, last=i == cfg.layers - 1,
                       cached=True) for i, d in enumerate(dims))
        self.p = cfg.dropout
        self.act = getattr(F, cfg.act)
        self.uses_edges = cfg.name != "mlp"
        self.sparse_input = cfg.name in SPARSE_INPUT
        self.adjacency_input = cfg.name in ADJACENCY_INPUT

    def _apply_layer(self, layer: nn.Module, x: Tensor, graph: Tensor) -> Tensor:
        return layer(dropout(x, self.p, self.training), *((graph,) if self.uses_edges else ()))

    def embed(self, x: Tensor, graph: Tensor) -> Tensor:
        """Node representations (N, width) just before the last layer: what the classifier separates.
        `graph`: edge_index (2, E), or the sparse adjacency where `adjacency_input`."""
        for layer in self.layers[:-1]:
            x = self.act(self._apply_layer(layer, x, graph))
        return x

    def forward(self, x: Tensor, graph: Tensor) -> Tensor:
        return self._apply_layer(self.layers[-1], self.embed(x, graph), graph)


class GraphNet(nn.Module):
    """`layers` message-passing layers of width `hidden`, a pooled readout per graph, an MLP head → (G, classes).

    `readout: last` pools the last layer only; `all` concatenates the pooled input and every layer's output, as in
    the GIN paper, so the head also sees the shallow, local patterns (atom counts, bonds) that deep layers blur."""

    def __init__(self, cfg: DictConfig, in_dim: int, num_classes: int):
        super().__init__()
        width = cfg.hidden * (cfg.heads if cfg.name == "gat" else 1)
        self.layers = nn.ModuleList(
            make_layer(cfg, in_dim if i == 0 else width, cfg.hidden, last=False, cached=False)
            for i in range(cfg.layers))
        self.act = getattr(F, cfg.act)
        self.uses_edges = cfg.name != "mlp"
        self.pool = POOLS[cfg.pool]
        self.all_layers = cfg.readout == "all"
        pooled = in_dim + cfg.layers * width if self.all_layers else width
        self.head = MLP([pooled, width, num_classes], norm=cfg.head_norm, dropout=cfg.dropout)

    def embed(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        """One vector per graph (G, pooled width): the readout the head classifies."""
        pooled = [self.pool(x, batch)] if self.all_layers else []
        for layer in self.layers:
            x = self.act(layer(x, edge_index) if self.uses_edges else layer(x))
            if self.all_layers:
                pooled.append(self.pool(x, batch))
        return torch.cat(pooled, dim=-1) if self.all_layers else self.pool(x, batch)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        return self.head(self.embed(x, edge_index, batch))


def param_groups(model: nn.Module, weight_decay: float, decay: str) -> list[dict]:
    """Weight decay on every parameter (`decay=all`) or on the first layer only (`first`, as in Kipf & Welling)."""
    if decay == "all":
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    first = list(model.layers[0].parameters())
    ids = {id(p) for p in first}
    return [{"params": first, "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if id(p) not in ids], "weight_decay": 0.0}]
