"""A self-supervised run's finding (contrastive, pretext), one sentence for the top of its report: the kNN accuracy
of the trained encoder's frozen features against the same encoder untrained (what self-supervision has to beat),
with the linear probe and the supervised reference where the run measured them. The names are evaluate.py's."""
from __future__ import annotations


def pretrain_finding(metrics: dict, encoder: str) -> str | None:
    """`encoder` names what was trained ("the SimCLR encoder", "the relative_position encoder": its underscores are
    read as spaces); None before the run has its kNN accuracy."""
    acc, untrained = metrics.get("knn_acc"), metrics.get("random_init_knn_acc")
    if acc is None or untrained is None:
        return None
    gain = 100 * (acc - untrained)
    encoder = encoder.replace("_", " ")
    sentence = (f"{encoder}'s frozen features reach kNN accuracy {acc:.3f} on the test images — {abs(gain):.1f} "
                f"points {'above' if gain >= 0 else 'below'} the same encoder untrained ({untrained:.3f})")
    if metrics.get("probe_acc") is not None and metrics.get("random_init_probe_acc") is not None:
        sentence += (f"; a linear probe on them reaches {metrics['probe_acc']:.3f} "
                     f"(untrained: {metrics['random_init_probe_acc']:.3f})")
    if metrics.get("supervised_acc") is not None:
        sentence += f"; the same encoder trained with labels reaches {metrics['supervised_acc']:.3f}"
    return sentence
