"""A char-GPT run's finding, one sentence for the top of its report: the best validation loss against where every
such model starts, a uniform guess over the characters (ln V nats/char: a freshly initialised GPT predicts close to
it). The trainer (training.py) writes it into the summary as `finding`."""
from __future__ import annotations

import math

from trends.records.findings import count


def gpt_finding(summary: dict) -> str | None:
    """From a run's summary (`metrics.best_val_loss`, `vocab_size`, `params`); None before the run has them."""
    metrics = summary.get("metrics", {})
    best, vocab = metrics.get("best_val_loss"), summary.get("vocab_size")
    if best is None or not vocab:
        return None
    uniform = math.log(vocab)
    size = f"the {count(summary['params'])}-parameter GPT" if summary.get("params") else "the GPT"
    return (f"{size} reaches a best validation loss of {best:.3f} nats/char ({best / math.log(2):.2f} bits) — "
            f"{uniform - best:.2f} below a uniform guess over its {vocab} characters (ln {vocab} = {uniform:.3f}, "
            f"where an untrained model starts)")
