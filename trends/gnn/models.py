"""The models: a stack of torch_geometric message-passing layers, read out per node or pooled per graph, and the
deep node classifiers that followed them.

`model.name` picks the layer: `mlp` (no edges: what the features alone give), `gcn` (Kipf & Welling 2017),
`sage` (Hamilton et al. 2017, mean aggregator), `gat` (Veličković et al. 2018), `gin` (Xu et al. 2019); or the
model: `appnp` (Gasteiger et al. 2019: predict with an MLP, then propagate by personalised PageRank) and `gcnii`
(Chen et al. 2020: GCN layers with an initial residual and an identity mapping, 64 deep). `node_model` builds the
node classifier a config names.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.nn import (
    APPNP,
    MLP,
    GATConv,
    GCN2Conv,
    GCNConv,
    GINConv,
    Linear,
    SAGEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from trends.errors import UserError

# Layers whose first step is a linear map of x, which torch multiplies sparse-times-dense: with Cora's X (98.7%
# zeros) kept sparse, that matmul and its backward cost ~1% of the dense one. SAGE and GIN gather x of neighbours
# before any linear map, so they need a dense X.
SPARSE_INPUT = {"mlp", "gcn", "gat"}
# What each model is given as the graph: `edges` (edge_index), `adjacency` (the sparse adjacency: SAGE's mean over
# neighbours' raw features, 3703 wide on CiteSeer, as one message per edge is a (E, F) tensor; by sparse matmul it is
# 2-3x faster, same numbers) or `normalized` (D^-1/2 (A+I) D^-1/2, sparse: APPNP and GCNII propagate by it at every
# one of their many steps; they declare it, and sparse X, themselves). NodeTask.graph builds each.
GRAPH_INPUT = {"sage": "adjacency"}  # NodeNet's layers; the others take `edges`
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
    """Dropout: each entry zeroed with probability p (exact to 1/65536), the rest scaled by 1/(1-p). F.dropout draws
    one bernoulli_ float per entry, which on CPUs costs more than a GCNII layer's products: here 64 random bits are
    drawn at a time and read as four 16-bit numbers (0.63 against 1.95 ms for 2708 x 64, backward included:
    `python bench/gnn.py --kernels`), the mask kept as floats for the backward. A sparse (COO, coalesced) X drops only
    its stored entries (a zero stays zero either way): the same random function at the cost of the non-zeros."""
    if not training or p == 0:
        return x
    values = x.values() if x.is_sparse else x
    n = values.numel()
    bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=values.device)
    keep = bits.view(torch.int16)[:n].view_as(values) >= round(p * 65536) - 32768
    values = values * keep.to(values.dtype).mul_(1 / (1 - p))
    if not x.is_sparse:
        return values
    return torch.sparse_coo_tensor(x.indices(), values, x.shape, is_coalesced=True,
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
        self.graph_input = GRAPH_INPUT.get(cfg.name, "edges")

    def _apply_layer(self, layer: nn.Module, x: Tensor, graph: Tensor) -> Tensor:
        return layer(dropout(x, self.p, self.training), *((graph,) if self.uses_edges else ()))

    def embed(self, x: Tensor, graph: Tensor) -> Tensor:
        """Node representations (N, width) just before the last layer: what the classifier separates.
        `graph`: edge_index (2, E), or the sparse adjacency where `graph_input` says so."""
        for layer in self.layers[:-1]:
            x = self.act(self._apply_layer(layer, x, graph))
        return x

    def forward(self, x: Tensor, graph: Tensor) -> Tensor:
        return self._apply_layer(self.layers[-1], self.embed(x, graph), graph)


class SymmetricPropagation(torch.autograd.Function):
    """Â @ x for a symmetric sparse Â (CSR), whose backward is Â @ grad again. torch's own backward of a CSR product
    transposes Â at every call: 1.28 ms forward and backward on Cora's 2708 x 64, against 0.42 ms here
    (`python bench/gnn.py --kernels`), 64 times per GCNII step."""

    @staticmethod
    def forward(ctx, adjacency: Tensor, x: Tensor) -> Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, torch.sparse.mm(ctx.adjacency, grad)


class GCNIIConv(GCN2Conv):
    """torch_geometric's GCN2Conv given the normalised adjacency (`normalize=False`), aggregating by
    SymmetricPropagation."""

    def message_and_aggregate(self, adjacency: Tensor, x: Tensor) -> Tensor:
        return SymmetricPropagation.apply(adjacency, x)


class PageRankPropagation(APPNP):
    """torch_geometric's APPNP (K steps of x ← (1-α) Â x + α h) given the normalised adjacency, aggregating by
    SymmetricPropagation."""

    def message_and_aggregate(self, adjacency: Tensor, x: Tensor) -> Tensor:
        return SymmetricPropagation.apply(adjacency, x)


class GCNII(nn.Module):
    """GCNII (Chen et al., ICML 2020): a linear map into `hidden`, `layers` GCNII convolutions, a linear classifier.
    Layer l computes ((1-α) Â h + α h0) ((1-β_l) I + β_l W_l), β_l = log(θ/l + 1): the initial residual h0 keeps
    every node's own features in reach however deep, the identity mapping keeps deep layers close to the identity.
    Dropout before every layer, ReLU after each."""

    graph_input = "normalized"
    sparse_input = True

    def __init__(self, cfg: DictConfig, in_dim: int, num_classes: int):
        super().__init__()
        self.lin_in, self.lin_out = Linear(in_dim, cfg.hidden), Linear(cfg.hidden, num_classes)
        self.convs = nn.ModuleList(GCNIIConv(cfg.hidden, alpha=cfg.alpha, theta=cfg.theta, layer=layer + 1,
                                             normalize=False) for layer in range(cfg.layers))
        self.p = cfg.dropout

    def embed(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """The last convolution's output (N, hidden): what the classifier separates."""
        x = x0 = F.relu(self.lin_in(dropout(x, self.p, self.training)))
        for conv in self.convs:
            x = F.relu(conv(dropout(x, self.p, self.training), x0, adjacency))
        return x

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        return self.lin_out(dropout(self.embed(x, adjacency), self.p, self.training))


class APPNPNet(nn.Module):
    """APPNP (Gasteiger et al., ICLR 2019): a two-layer MLP predicts from each node's features alone, then
    `layers` = K steps of personalised PageRank propagate the predictions (α: the teleport back to them). Depth
    here costs no parameters, and the teleport keeps every node's own prediction in each step."""

    graph_input = "normalized"
    sparse_input = True

    def __init__(self, cfg: DictConfig, in_dim: int, num_classes: int):
        super().__init__()
        self.layers = nn.ModuleList([Linear(in_dim, cfg.hidden), Linear(cfg.hidden, num_classes)])
        self.propagate = PageRankPropagation(K=cfg.layers, alpha=cfg.alpha, normalize=False)
        self.p = cfg.dropout

    def embed(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """The propagated predictions (N, classes): APPNP's last representation is its output."""
        x = F.relu(self.layers[0](dropout(x, self.p, self.training)))
        return self.propagate(self.layers[1](dropout(x, self.p, self.training)), adjacency)

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        return self.embed(x, adjacency)


NODE_MODELS = {"gcnii": GCNII, "appnp": APPNPNet}  # node classifiers only: no graph readout


def node_model(cfg: DictConfig, in_dim: int, num_classes: int) -> nn.Module:
    """The node classifier `cfg.name` names: GCNII, APPNP, or a NodeNet stack of `cfg.name` layers."""
    return NODE_MODELS.get(cfg.name, NodeNet)(cfg, in_dim, num_classes)


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


def param_groups(model: nn.Module, optim: DictConfig) -> list[dict]:
    """`optim.weight_decay` on every parameter (`decay=all`); on the first layer only (`first`: Kipf & Welling's GCN,
    APPNP); or on the dense layers with `optim.conv_weight_decay` on the convolutions (`split`: GCNII)."""
    if optim.decay == "all":
        return [{"params": list(model.parameters()), "weight_decay": optim.weight_decay}]
    if optim.decay == "first":
        apart, decays = list(model.layers[0].parameters()), (optim.weight_decay, 0.0)
    elif optim.decay == "split" and hasattr(model, "convs"):
        apart, decays = list(model.convs.parameters()), (optim.conv_weight_decay, optim.weight_decay)
    else:
        raise UserError(f"optim.decay={optim.decay}: use all, first or split (split: model=gcnii only)")
    ids = {id(p) for p in apart}
    return [{"params": apart, "weight_decay": decays[0]},
            {"params": [p for p in model.parameters() if id(p) not in ids], "weight_decay": decays[1]}]
