"""Graphs in, tensors out: Planetoid citation graphs, Zachary's karate club, TUDataset molecules, synthetic graphs.

torch_geometric reads and processes the datasets; this module only decides where (a read-only root is mirrored
into the cache, since processing writes `<name>/processed/`) and turns a failed download into a clear message.
"""
from __future__ import annotations

import shutil
import socket
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_geometric.transforms as T
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import erdos_renyi_graph, stochastic_blockmodel_graph, to_torch_csr_tensor, to_undirected

from trends.core.data import cache_dir, data_root, is_writable
from trends.errors import UserError

# torch_geometric's raw file names (the first two of TU's are the ones it checks; the others are read if present).
PLANETOID_FILES = ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"]
TU_FILES = ["A", "graph_indicator", "graph_labels", "node_labels", "edge_labels", "node_attributes"]


@dataclass
class NodeTask:
    """One graph with labelled nodes (transductive: every node is seen, only the train labels are used)."""

    x: Tensor  # (N, F) float features; a sparse COO tensor (coalesced) when most entries are zero
    edge_index: Tensor  # (2, E) int64, both directions of every undirected edge
    y: Tensor  # (N,) int64 class of each node
    masks: dict[str, Tensor]  # "train" / "val" / "test": (N,) bool
    num_classes: int
    name: str

    @property
    def num_nodes(self) -> int:
        return self.y.numel()

    def to(self, device: torch.device) -> "NodeTask":
        return NodeTask(self.x.to(device), self.edge_index.to(device), self.y.to(device),
                        {k: m.to(device) for k, m in self.masks.items()}, self.num_classes, self.name)

    def adjacency(self) -> Tensor:
        """The transposed adjacency (N, N) as sparse CSR: row i holds the nodes that send to i. Layers given this
        instead of edge_index aggregate by sparse matmul, never building one message per edge."""
        with torch.sparse.check_sparse_tensor_invariants(), warnings.catch_warnings():
            # torch calls its CSR support beta; CSR is what torch_geometric wants
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return to_torch_csr_tensor(self.edge_index.flip(0), size=self.num_nodes)


# -- node classification ------------------------------------------------------------------------------------------
def load_node_task(cfg: DictConfig) -> NodeTask:
    """The graph named by `cfg.name` (cora | citeseer | pubmed | karate | synthetic), features row-normalised
    when `cfg.normalize_features` and stored sparse when `cfg.sparse_features` (Cora's X is 98.7% zeros)."""
    normalize = T.NormalizeFeatures() if cfg.get("normalize_features") else None  # rows sum to 1 (Kipf & Welling)
    if cfg.kind == "planetoid":
        from torch_geometric.datasets import Planetoid

        files = [f"ind.{cfg.pyg_name.lower()}.{f}" for f in PLANETOID_FILES]
        folder = _pyg_folder(cfg, files)
        data = _open(cfg, folder, files,
                     lambda root: Planetoid(str(root), cfg.pyg_name, split="public", transform=normalize))[0]
        masks = {"train": data.train_mask, "val": data.val_mask, "test": data.test_mask}
    elif cfg.kind == "karate":
        from torch_geometric.datasets import KarateClub

        data = KarateClub(transform=normalize)[0]
        # One labelled member per community and no held-out split: the other 30 members are the test set,
        # and with no validation nodes the last epoch is the one reported.
        masks = {"train": data.train_mask, "val": torch.zeros_like(data.train_mask), "test": ~data.train_mask}
    elif cfg.kind == "synthetic":
        return synthetic_node_task(cfg)
    else:
        raise UserError(f"data={cfg.name} is a graph-classification dataset; use it with task=graph")
    return NodeTask(_stored(data.x.float(), cfg), data.edge_index, data.y, masks, int(data.y.max()) + 1, cfg.name)


def _stored(x: Tensor, cfg: DictConfig) -> Tensor:
    """X as the models get it: sparse COO (coalesced) when `cfg.sparse_features`. Ours, not a torch_geometric
    transform: its ToSparseTensor makes the adjacency sparse, never X."""
    return x.to_sparse_coo().coalesce() if cfg.sparse_features else x


def synthetic_node_task(cfg: DictConfig) -> NodeTask:
    """A stochastic block model (one block per class) with noisy bag-of-words features: neither the features nor
    the edges alone give the class away, together they do (offline, seconds; the graph is fixed by
    `cfg.graph_seed`)."""
    n, c, f = cfg.num_nodes, cfg.num_classes, cfg.num_features
    sizes = [n // c + (k < n % c) for k in range(c)]
    y = torch.arange(c).repeat_interleave(torch.tensor(sizes))
    with _seeded(cfg.graph_seed):
        edge_index = stochastic_blockmodel_graph(sizes, torch.full((c, c), cfg.p_out).fill_diagonal_(cfg.p_in))
        # Each node draws `words` feature ids: from its class's topic with probability `signal`, else at random.
        topic = torch.arange(f // c * c).view(c, f // c)
        words = torch.randint(f, (n, cfg.words))
        own = topic[y][torch.arange(n)[:, None], torch.randint(topic.size(1), (n, cfg.words))]
        words = torch.where(torch.rand(n, cfg.words) < cfg.signal, own, words)
        order = torch.randperm(n)
    data = T.NormalizeFeatures()(Data(x=torch.zeros(n, f).scatter_(1, words, 1.0), edge_index=edge_index, y=y))
    train = torch.cat([order[y[order] == k][: cfg.train_per_class] for k in range(c)])
    rest = order[~torch.isin(order, train)]
    masks = {}
    for name, idx in (("train", train), ("val", rest[: cfg.num_val]), ("test", rest[cfg.num_val:])):
        masks[name] = torch.zeros(n, dtype=torch.bool).index_fill_(0, idx, True)
    return NodeTask(_stored(data.x, cfg), data.edge_index, y, masks, c, cfg.name)


@contextmanager
def _seeded(seed: int):
    """torch_geometric's random graphs draw from torch's global RNG: a synthetic dataset draws everything from a
    fork of it seeded by `seed`, so the data is fixed by graph_seed and the run's own RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# -- graph classification -----------------------------------------------------------------------------------------
def load_graph_dataset(cfg: DictConfig):
    """A list-like of torch_geometric `Data` graphs with `x` (n_i, F) and `y` (1,): TUDataset MUTAG / PROTEINS,
    or small synthetic graphs."""
    if cfg.kind == "tu":
        from torch_geometric.datasets import TUDataset

        files = [f"{cfg.pyg_name}_{f}.txt" for f in TU_FILES]
        folder = _pyg_folder(cfg, files)
        return _open(cfg, folder, files, lambda root: TUDataset(str(root), cfg.pyg_name, use_node_attr=cfg.node_attr))
    if cfg.kind == "synthetic":
        return synthetic_graphs(cfg)
    raise UserError(f"data={cfg.name} is a single graph for node classification; use task=node "
                    "(graph classification: data=mutag, proteins or synthetic)")


def synthetic_graphs(cfg: DictConfig) -> list:
    """Two classes of small random graphs that differ in edge density; node features: one of 3 random types."""
    graphs = []
    with _seeded(cfg.graph_seed):
        for i in range(cfg.num_graphs):
            label = i % 2
            n = int(torch.randint(cfg.min_nodes, cfg.max_nodes + 1, (1,)))
            # Erdős–Rényi edges plus a ring, which keeps every graph connected (torch_geometric has no generator
            # of connected random graphs).
            ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
            edge_index = to_undirected(torch.cat([erdos_renyi_graph(n, cfg.densities[label]), ring], dim=1),
                                       num_nodes=n)
            x = torch.nn.functional.one_hot(torch.randint(3, (n,)), 3).float()
            graphs.append(Data(x=x, edge_index=edge_index, y=torch.tensor([label])))
    return graphs


def stratified_folds(y: Tensor, k: int, generator: torch.Generator) -> list[Tensor]:
    """`k` disjoint index sets covering 0..len(y)-1, each with (nearly) the class balance of `y`."""
    if k < 2 or int(torch.bincount(y).min()) < k:
        raise UserError(f"train.folds={k}: need 2 or more folds, and no more than the smallest class "
                        f"({int(torch.bincount(y).min())} graphs)")
    folds: list[list[Tensor]] = [[] for _ in range(k)]
    offset = 0
    for label in range(int(y.max()) + 1):
        members = (y == label).nonzero().view(-1)
        members = members[torch.randperm(len(members), generator=generator)]
        for j in range(k):  # deal round-robin, each class starting where the last one stopped
            folds[(offset + j) % k].append(members[j::k])
        offset += len(members)
    return [torch.cat(f).sort().values for f in folds]


# -- where torch_geometric reads and writes -------------------------------------------------------------------------
def _pyg_folder(cfg: DictConfig, files: list[str]) -> Path:
    """The folder `<x>/<Name>` to give torch_geometric: `<root>/<Name>` itself if we may write there, else a
    mirror under the cache whose raw/ links to the root's files (processing writes `<Name>/processed/`)."""
    source = data_root(cfg.root) / cfg.pyg_name
    if is_writable(source):
        return source
    mirror = cache_dir() / "data" / cfg.pyg_name
    if not _complete(source, files):
        return mirror  # nothing to mirror: download into the cache
    present = [f for f in files if (source / "raw" / f).is_file()]
    (mirror / "raw").mkdir(parents=True, exist_ok=True)
    changed = False
    for name in present:
        link, target = mirror / "raw" / name, (source / "raw" / name).resolve()
        if link.is_symlink() and link.resolve() == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
        changed = True
    if changed:  # processed from other raw files: process again
        shutil.rmtree(mirror / "processed", ignore_errors=True)
    return mirror


def _complete(folder: Path, files: list[str]) -> bool:
    """Whether `folder/raw` has the files torch_geometric checks before it decides to download."""
    needed = files if files[0].startswith("ind.") else files[:2]
    return all((folder / "raw" / f).is_file() for f in needed)


def _open(cfg: DictConfig, folder: Path, files: list[str], make):
    """`make(root)` with root = folder's parent; a failed download becomes a UserError that says what to put where."""
    if _complete(folder, files):
        return make(folder.parent)  # nothing to download: any error here is a real one
    try:
        with _download_timeout(cfg.download_timeout):
            return make(folder.parent)
    except (OSError, ImportError) as err:  # URLError, aiohttp's connection errors, timeouts: all OSErrors
        where = data_root(cfg.root) / cfg.pyg_name / "raw"
        files = (f"ind.{cfg.pyg_name.lower()}.{{{','.join(PLANETOID_FILES)}}}" if cfg.kind == "planetoid"
                 else f"{cfg.pyg_name}_{{A,graph_indicator,graph_labels,node_labels}}.txt")
        detail = f": {str(err).splitlines()[0]}" if str(err).strip() else ""
        raise UserError(f"could not load {cfg.pyg_name}: the download failed ({type(err).__name__}{detail}). "
                        f"Offline? Put the files "
                        f"{files} in {where}/ (or set data.root or TRENDS_DATA to a folder that has "
                        f"{cfg.pyg_name}/raw/)") from None


@contextmanager
def _download_timeout(seconds: float):
    """A download that stalls (no route, a server that never answers) fails after `seconds` instead of minutes:
    torch_geometric fetches through fsspec's aiohttp client (timeouts from fsspec's config), or through urllib
    (the socket default)."""
    import aiohttp
    import fsspec.config

    saved = {p: fsspec.config.conf.get(p) for p in ("http", "https")}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
    for protocol in saved:
        fsspec.config.conf[protocol] = {**(saved[protocol] or {}), "client_kwargs": {"timeout": timeout}}
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
        for protocol, conf in saved.items():
            if conf is None:
                fsspec.config.conf.pop(protocol, None)
            else:
                fsspec.config.conf[protocol] = conf
