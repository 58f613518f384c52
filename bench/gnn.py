"""Median epoch time of GCN, GAT and the 64-layer GCNII on Cora: `trends gnn`'s models beside the same models built
straight from torch_geometric's examples/gcn.py, examples/gat.py and examples/gcn2_cora.py, timed side by side in this
process.

The two run in alternation, one epoch each, so that a busy machine slows both alike. An "epoch" is what the
examples time: one training step (forward, backward, Adam); the evaluation pass is timed separately.

    python bench/gnn.py [--root DIR] [--epochs 200] [--threads 1] [--models gcn,gat,gcnii] [--kernels]

--kernels also times, in turns, the two pieces a GCNII layer spends its time in, forward and backward on Cora's
2708 x 64 features: F.dropout against trends' dropout, and torch's CSR product against SymmetricPropagation.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

warnings.filterwarnings("ignore", message=".*torch.jit.script.*")  # torch_geometric's import-time warning
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")  # the example's adjacency

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_geometric.transforms as T  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.nn import GATConv, GCN2Conv, GCNConv  # noqa: E402

from trends.gnn.data import load_node_task  # noqa: E402
from trends.gnn.models import SymmetricPropagation, dropout, node_model, param_groups  # noqa: E402
from trends.launch import CONFIGS  # noqa: E402


# -- the reference: torch_geometric's example recipes, as written there ----------------------------------------
class ExampleGCN(torch.nn.Module):  # examples/gcn.py
    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels)
        self.conv2 = GCNConv(hidden_channels, out_channels)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


class ExampleGAT(torch.nn.Module):  # examples/gat.py
    def __init__(self, in_channels, hidden_channels, out_channels, heads):
        super().__init__()
        self.conv1 = GATConv(in_channels, hidden_channels, heads, dropout=0.6)
        self.conv2 = GATConv(hidden_channels * heads, out_channels, heads=1, concat=False, dropout=0.6)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=0.6, training=self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.6, training=self.training)
        return self.conv2(x, edge_index)


class ExampleGCNII(torch.nn.Module):  # examples/gcn2_cora.py
    def __init__(self, in_channels, hidden_channels, out_channels, num_layers, alpha, theta, dropout):
        super().__init__()
        self.lins = torch.nn.ModuleList([torch.nn.Linear(in_channels, hidden_channels),
                                         torch.nn.Linear(hidden_channels, out_channels)])
        self.convs = torch.nn.ModuleList(GCN2Conv(hidden_channels, alpha, theta, layer + 1, normalize=False)
                                         for layer in range(num_layers))
        self.dropout = dropout

    def forward(self, x, adj_t):
        x = F.dropout(x, self.dropout, training=self.training)
        x = x_0 = self.lins[0](x).relu()
        for conv in self.convs:
            x = F.dropout(x, self.dropout, training=self.training)
            x = conv(x, x_0, adj_t).relu()
        x = F.dropout(x, self.dropout, training=self.training)
        return self.lins[1](x).log_softmax(dim=-1)


def reference(name: str, in_dim: int, classes: int):
    if name == "gcn":
        model = ExampleGCN(in_dim, 16, classes)
        optimizer = torch.optim.Adam([dict(params=model.conv1.parameters(), weight_decay=5e-4),
                                      dict(params=model.conv2.parameters(), weight_decay=0)], lr=0.01)
    elif name == "gat":
        model = ExampleGAT(in_dim, 8, classes, heads=8)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    else:
        model = ExampleGCNII(in_dim, 64, classes, num_layers=64, alpha=0.1, theta=0.5, dropout=0.6)
        optimizer = torch.optim.Adam([dict(params=model.convs.parameters(), weight_decay=0.01),
                                      dict(params=model.lins.parameters(), weight_decay=5e-4)], lr=0.01)
    return model, optimizer


def reference_graph(name: str, x, edge_index):
    """The graph as the example gives it: edge_index, or (GCNII) the normalised adjacency its transforms make
    (T.GCNNorm, T.ToSparseTensor: a torch sparse CSR tensor where torch_sparse is not installed)."""
    if name != "gcnii":
        return edge_index
    return T.Compose([T.GCNNorm(), T.ToSparseTensor()])(Data(x=x, edge_index=edge_index)).adj_t


# -- timing ----------------------------------------------------------------------------------------------------
def stepper(model, optimizer, x, edge_index, y, train_mask):
    """(train step, eval pass) closures, each returning its wall time in seconds."""
    def train() -> float:
        tic = time.perf_counter()
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index)[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        loss.item()
        return time.perf_counter() - tic

    @torch.no_grad()
    def evaluate() -> float:
        tic = time.perf_counter()
        model.eval()
        model(x, edge_index).argmax(-1)
        return time.perf_counter() - tic

    return train, evaluate


def kernels(task, rounds: int = 200) -> None:
    """Median ms of each piece, forward and backward, the two sides of each pair timed in turns."""
    x = torch.randn(task.num_nodes, 64, requires_grad=True)
    grad = torch.randn(task.num_nodes, 64)
    adjacency = task.graph("normalized")
    pairs = {"dropout p=0.6": (lambda: F.dropout(x, 0.6, True), lambda: dropout(x, 0.6, True)),
             "propagation by the normalised adjacency": (lambda: torch.sparse.mm(adjacency, x),
                                                          lambda: SymmetricPropagation.apply(adjacency, x))}
    print(f"{'piece (2708 x 64, forward + backward)':42} {'torch':>8} {'trends':>8}")
    for name, sides in pairs.items():
        times = ([], [])
        for _ in range(rounds):
            for side, make in zip(times, sides):
                tic = time.perf_counter()
                make().backward(grad)
                side.append(time.perf_counter() - tic)
        torch_ms, trends_ms = (1000 * statistics.median(t[10:]) for t in times)
        print(f"{name:42} {torch_ms:5.2f} ms {trends_ms:5.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="data root with Cora/raw/ (default: $TRENDS_DATA or cache)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, for both sides (default 1, "
                        "as `trends gnn` uses: cpu_threads)")
    parser.add_argument("--models", default="gcn,gat,gcnii", help="which of gcn, gat, gcnii (default: all)")
    parser.add_argument("--kernels", action="store_true", help="also time dropout and the sparse propagation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = f"data.root={args.root}" if args.root else "data.root=null"

    print(f"Cora, median over {args.epochs - 10} epochs (first 10 skipped), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU thread(s)")
    print(f"{'model':6} {'example recipe':>15} {'trends gnn':>11} {'speed-up':>9}   {'eval: example':>13} "
          f"{'trends':>7}")
    for name in args.models.split(","):
        with initialize_config_module(config_module=CONFIGS, version_base="1.3"):
            cfg = compose("gnn", overrides=[f"model={name}", "data=cora", root])
        task = load_node_task(cfg.data)  # ours: sparse, row-normalised X
        x_dense = task.x.to_dense()  # the examples' X: the same numbers, dense (T.NormalizeFeatures)
        torch.manual_seed(0)
        ours = node_model(cfg.model, task.x.size(1), task.num_classes)
        ours_opt = torch.optim.Adam(param_groups(ours, cfg.optim), lr=cfg.optim.lr)
        ref, ref_opt = reference(name, task.x.size(1), task.num_classes)
        ref_graph = reference_graph(name, x_dense, task.edge_index)
        sides = {"ref": stepper(ref, ref_opt, x_dense, ref_graph, task.y, task.masks["train"]),
                 "ours": stepper(ours, ours_opt, task.x, task.graph(ours.graph_input), task.y, task.masks["train"])}
        times = {side: ([], []) for side in sides}
        for _ in range(args.epochs):
            for side, (train, evaluate) in sides.items():
                times[side][0].append(train())
                times[side][1].append(evaluate())
        med = {side: [1000 * statistics.median(t[10:]) for t in ts] for side, ts in times.items()}
        print(f"{name:6} {med['ref'][0]:12.1f} ms {med['ours'][0]:8.1f} ms {med['ref'][0] / med['ours'][0]:8.1f}x   "
              f"{med['ref'][1]:10.1f} ms {med['ours'][1]:4.1f} ms")
    if args.kernels:
        kernels(task)


if __name__ == "__main__":
    main()
