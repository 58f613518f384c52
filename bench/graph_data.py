"""What checking the graph data costs: each dataset loaded as `trends gnn` loads it — every raw file hashed against
its pin as it is copied into a private folder, then processed there by torch_geometric — median of 3 loads.

    python bench/graph_data.py      # needs the datasets under ../shared/data (or $TRENDS_DATA)
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trends.gnn.data import load_graph_dataset, load_node_task  # noqa: E402


def main() -> None:
    root = os.environ.get("TRENDS_DATA", str(REPO.parent / "shared" / "data"))
    for name, load in (("cora", load_node_task), ("citeseer", load_node_task), ("mutag", load_graph_dataset),
                       ("proteins", load_graph_dataset)):
        cfg = OmegaConf.load(REPO / "trends" / "conf" / "gnn" / "data" / f"{name}.yaml")
        cfg.root = root
        times = []
        for _ in range(3):
            start = time.perf_counter()
            load(cfg)
            times.append(time.perf_counter() - start)
        print(f"{name:9s} {statistics.median(times):.2f} s per load (median of 3)")


if __name__ == "__main__":
    main()
