"""A gnn run's finding, one sentence for the top of its report: the test accuracy against a uniform guess over the
classes (the baseline every run has; a sweep over `model=mlp,gcn` sets the MLP beside it on the sweep's page).
train.py (one graph) and crossval.py (graph classification) write it into the summary as `finding`."""
from __future__ import annotations

import statistics

from trends.records.findings import above_chance


def node_finding(summary: dict, model: str, dataset: str) -> str | None:
    """From a node-classification run's summary (`metrics.test_acc`, in %, `classes`)."""
    acc, classes = summary.get("metrics", {}).get("test_acc"), summary.get("classes")
    if acc is None or not classes:
        return None
    return (f"{model.upper()} on {dataset} reaches {acc:.1f} % test accuracy (at the epoch picked by validation) — "
            f"{above_chance(acc, classes)}")


def graph_finding(summary: dict, model: str, dataset: str) -> str | None:
    """From a graph-classification run's summary (`fold_acc`: each fold's held-out accuracy in %, `classes`)."""
    folds, classes = summary.get("fold_acc"), summary.get("classes")
    if not folds or not classes:
        return None
    mean = statistics.fmean(folds)
    std = f" ± {statistics.stdev(folds):.1f}" if len(folds) > 1 else ""
    return (f"{model.upper()} on {dataset} reaches {mean:.1f}{std} % accuracy over {len(folds)} folds of "
            f"cross-validation — {above_chance(mean, classes)}")
