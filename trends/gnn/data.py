"""Graphs in, tensors out: Planetoid citation graphs, Zachary's karate club, TUDataset molecules, synthetic graphs.

torch_geometric reads and processes the datasets; this module decides what it may read: raw files whose sha256
matches a pin (Planetoid's are pickles, which run code when crafted), copied into a private folder where it
processes them afresh, so nothing found beside them is ever loaded. A download is checked before it is kept, and a
failed one becomes a clear message.
"""
from __future__ import annotations

import hashlib
import io
import os
import socket
import sys
import tempfile
import warnings
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_geometric.transforms as T
from omegaconf import DictConfig
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import (
    erdos_renyi_graph,
    is_undirected,
    stochastic_blockmodel_graph,
    to_torch_csr_tensor,
    to_undirected,
)

from trends.core.data import data_root, sha256_of, writable_copy_of
from trends.errors import UserError

# Every raw file torch_geometric reads, with its sha256: Planetoid's `ind.*` (kimiyoung/planetoid at af6abf4, which
# torch_geometric downloads from) and the TU text files (the TU server's zips; torch_geometric reads every
# `<Name>_*.txt`, and only these are given to it). Computed from the copies in ../shared/data (SOURCES.md).
# PubMed has none: no copy was at hand to compute them from.
RAW_SHA256 = {
    "Cora": {
        "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
        "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
        "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
        "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
        "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
        "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
        "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
        "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    },
    "CiteSeer": {
        "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
        "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
        "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
        "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
        "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
        "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
        "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
        "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    },
    "MUTAG": {
        "MUTAG_A.txt": "d9656ca7493f3445d737c711710bb36fd432dddd1c0ea32e1d4713c86ebd28e2",
        "MUTAG_edge_labels.txt": "4669ce755075ff86c3240709345745886400908fa637a49310459b9c267b3e56",
        "MUTAG_graph_indicator.txt": "7d520a4d6c7961c0cdeabe076d8fe27e795b6d373485c9a2b744987e560a2056",
        "MUTAG_graph_labels.txt": "a1518ea39ba3426bd42f57396b9c4baffe68e9adc718caeeab0119c6591a5f2c",
        "MUTAG_node_labels.txt": "678f429965490e84dd27713017538c995fc05d1621beac910848b600015ee863",
    },
    "PROTEINS": {
        "PROTEINS_A.txt": "4c4b33e272fc95cac6d27ed6d5d12b9a852c8610e91fff59f8f0dbdd5a20df67",
        "PROTEINS_graph_indicator.txt": "8d4ff1e852a5c28561e9bffb44cf9490bc552b13a3b6156dd12dc7f44e9afc4a",
        "PROTEINS_graph_labels.txt": "c0ef9810c440775252872318d0c8adc385588e14bc4c47a2c34aa96ee3c7cdcd",
        "PROTEINS_node_attributes.txt": "54eef829abb37e458a5fbf3a3c581e48e5810e220463c2cd951856b9ceb08f07",
        "PROTEINS_node_labels.txt": "f758e8ad3d6e3c026b50833d75f6f90735b94eb3345e4243707f495ca8afea8d",
    },
}


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

    def graph(self, kind: str) -> Tensor:
        """The graph as a model takes it (its `graph_input`): `edges` (edge_index), `adjacency` or `normalized`."""
        return {"edges": lambda: self.edge_index, "adjacency": self.adjacency,
                "normalized": self.normalized_adjacency}[kind]()

    def adjacency(self, weight: Tensor | None = None, edge_index: Tensor | None = None) -> Tensor:
        """The transposed adjacency (N, N) as sparse CSR: row i holds the nodes that send to i (with `weight` per
        edge of `edge_index`, default 1 per edge of the graph). Layers given this instead of edge_index aggregate by
        sparse matmul, never building one message per edge."""
        edge_index = self.edge_index if edge_index is None else edge_index
        with torch.sparse.check_sparse_tensor_invariants(), warnings.catch_warnings():
            # torch calls its CSR support beta; CSR is what torch_geometric wants
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return to_torch_csr_tensor(edge_index.flip(0), weight, size=self.num_nodes)

    def normalized_adjacency(self) -> Tensor:
        """Â = D^-1/2 (A + I) D^-1/2 (Kipf & Welling's renormalised adjacency; D: degrees counting the self-loop) as
        sparse CSR: what APPNP and GCNII propagate by. Symmetric, since the graph is undirected."""
        if not is_undirected(self.edge_index, num_nodes=self.num_nodes):
            raise UserError(f"{self.name}: APPNP and GCNII need an undirected graph (every edge in both directions)")
        edge_index, weight = gcn_norm(self.edge_index, None, self.num_nodes, add_self_loops=True)
        return self.adjacency(weight, edge_index)


# -- node classification ------------------------------------------------------------------------------------------
def load_node_task(cfg: DictConfig) -> NodeTask:
    """The graph named by `cfg.name` (cora | citeseer | pubmed | karate | synthetic), features row-normalised
    when `cfg.normalize_features` and stored sparse when `cfg.sparse_features` (Cora's X is 98.7% zeros)."""
    normalize = T.NormalizeFeatures() if cfg.get("normalize_features") else None  # rows sum to 1 (Kipf & Welling)
    if cfg.kind == "planetoid":
        from torch_geometric.datasets import Planetoid

        data = _load(cfg, lambda root: Planetoid(root, cfg.pyg_name, split="public", transform=normalize))[0]
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

        return _load(cfg, lambda root: TUDataset(root, cfg.pyg_name, use_node_attr=cfg.node_attr))
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


# -- raw files: found or downloaded, checked, then processed where nobody else writes ------------------------------
def _load(cfg: DictConfig, make):
    """`make(root)` on a private root holding copies of the dataset's raw files, each checked against its pin as it
    is copied (what torch_geometric reads is what was checked). torch_geometric processes them there every time
    (0.05 s for Cora, 0.5 s for PROTEINS on 2 cores: bench/graph_data.py): a `processed/` folder it finds it reads
    back with torch.load, `pre_transform.pt` with weights_only=False, so one planted beside the raw files would run
    code."""
    pins = _pins(cfg)
    raw = _raw_folder(cfg, pins)
    with tempfile.TemporaryDirectory(prefix="trends-graphs-") as private, _quiet_processing():
        (Path(private) / cfg.pyg_name / "raw").mkdir(parents=True)
        for name, sha256 in pins.items():
            if _copy_hashed(raw / name, Path(private) / cfg.pyg_name / "raw" / name) != sha256:
                raise UserError(f"{raw / name} is not the file trends expects (sha256 {sha256}): delete it to "
                                f"download it again, or restore the original")
        return make(private)


def _pins(cfg: DictConfig) -> dict[str, str]:
    """The dataset's raw files and their sha256; a dataset with none pinned is refused, not read unchecked."""
    if cfg.pyg_name not in RAW_SHA256:
        raise UserError(f"data={cfg.name}: no sha256 is pinned for {cfg.pyg_name}'s raw files, which "
                        f"torch_geometric would unpickle unchecked; use data=cora or data=citeseer")
    return RAW_SHA256[cfg.pyg_name]


def _raw_folder(cfg: DictConfig, pins: dict[str, str]) -> Path:
    """`<root>/<Name>/raw` if it has every file, else its writable copy's (the cache's when the root is read-only),
    downloading them there first if they are missing there too."""
    root = data_root(cfg.root)
    for folder in (root / cfg.pyg_name / "raw", writable_copy_of(root, cfg.pyg_name) / "raw"):
        if all((folder / name).is_file() for name in pins):
            return folder
    raw = writable_copy_of(root, cfg.pyg_name) / "raw"
    _download(cfg, raw, pins)
    return raw


def _download(cfg: DictConfig, raw: Path, pins: dict[str, str]) -> None:
    """Fetch the raw files the way torch_geometric does (its URLs unless `cfg.url` names a mirror, its copy function)
    into a scratch folder beside `raw`, check each against its pin, and only then move them in: a broken or altered
    download never stands in `raw`."""
    from torch_geometric.datasets import Planetoid, TUDataset
    from torch_geometric.io import fs

    url = cfg.get("url") or (Planetoid.url if cfg.kind == "planetoid" else TUDataset.url)
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw.parent, prefix=".download-") as scratch:
        try:
            with _download_timeout(cfg.download_timeout):
                if cfg.kind == "planetoid":
                    for name in pins:
                        fs.cp(f"{url}/{name}", scratch)
                else:  # one zip of a folder <Name>/ holding the files
                    fs.cp(f"{url}/{cfg.pyg_name}.zip", scratch, extract=True)
        except (OSError, ImportError) as err:  # URLError, aiohttp's connection errors, timeouts: all OSErrors
            detail = f": {str(err).splitlines()[0]}" if str(err).strip() else ""
            raise UserError(f"could not load {cfg.pyg_name}: the download failed ({type(err).__name__}{detail}). "
                            f"Offline? Put the files {_pattern(cfg, pins)} in "
                            f"{data_root(cfg.root) / cfg.pyg_name / 'raw'}/ (or set data.root or TRENDS_DATA to a "
                            f"folder that has {cfg.pyg_name}/raw/)") from None
        fetched = Path(scratch) / ("" if cfg.kind == "planetoid" else cfg.pyg_name)
        for name, sha256 in pins.items():
            if not (fetched / name).is_file() or sha256_of(fetched / name) != sha256:
                raise UserError(f"the download of {cfg.pyg_name} from {url} is not what trends expects ({name}, "
                                f"sha256 {sha256}); nothing was kept: try again, or put the original files in {raw}/")
        for name in pins:
            os.replace(fetched / name, raw / name)


def _copy_hashed(source: Path, dest: Path) -> str:
    """Copy `source` to `dest` and return the sha256 of the bytes copied (read once: no window between the check
    and the copy)."""
    digest = hashlib.sha256()
    with open(source, "rb") as f, open(dest, "wb") as out:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _pattern(cfg: DictConfig, pins: dict[str, str]) -> str:
    """The file names as one pattern: `ind.cora.{x,tx,...}` or `MUTAG_{A,...}.txt`."""
    prefix, suffix = (f"ind.{cfg.pyg_name.lower()}.", "") if cfg.kind == "planetoid" else (f"{cfg.pyg_name}_", ".txt")
    return prefix + "{" + ",".join(name[len(prefix):len(name) - len(suffix)] for name in pins) + "}" + suffix


@contextmanager
def _quiet_processing():
    """torch_geometric prints "Processing..." and "Done!" each time it processes, now every load: those two lines
    are dropped, anything else it writes to stderr (a warning) is passed on."""
    captured = io.StringIO()
    try:
        with redirect_stderr(captured):
            yield
    finally:
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if line.strip() not in ("Processing...", "Done!")))


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
