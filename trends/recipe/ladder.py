"""A finished `trends recipe` sweep read back: one Rung per rung of the ladder (per variant, where the sweep varied
something else too), in the order the sweep ran them, from each job's summary.json and metrics.jsonl."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from trends.errors import UserError
from trends.records import layout
from trends.records.metrics import read_metrics
from trends.records.sweep import jobs_of
from trends.records.tables import shared_overrides


@dataclass
class Rung:
    """One rung over its seeds: the trick it adds, and what each seed measured."""
    name: str
    label: str
    what: str
    variant: str = ""  # the overrides, other than the seed and the rung, that set its jobs apart from the others
    losses: list[float] = field(default_factory=list)  # each seed's best validation loss
    rates: list[float] = field(default_factory=list)  # each seed's training tokens/s
    times: list[float | None] = field(default_factory=list)  # each seed's seconds to the target loss (None: never)

    @property
    def loss(self) -> float:
        return statistics.fmean(self.losses)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.losses) if len(self.losses) > 1 else None

    @property
    def time_to_target(self) -> float | None:
        """The mean over the seeds; None unless every seed reached the target (a mean of those that did would
        flatter the rung)."""
        return statistics.fmean(self.times) if self.times and None not in self.times else None


def load_ladder(sweep_dir: Path, target: float) -> tuple[list[Rung], list[str]]:
    """The rungs in the order the sweep ran them (its jobs go through ladder.rungs seed by seed), their seeds' times
    to `target`, and one line per job left out (not completed); a UserError where none completed, or where
    `sweep_dir` is not a `trends recipe` sweep (`--from` takes any path)."""
    jobs = jobs_of(Path(sweep_dir), "recipe", example="0_gpt2/, 1_rotary/")
    summaries = {job: layout.read_summary(job) for job in jobs}
    shared = shared_overrides([s.get("overrides", []) for s in summaries.values()])
    rungs: dict[tuple[str, str], Rung] = {}
    left_out = []
    for job, s in summaries.items():
        if s.get("status") != "completed" or "rung" not in s:
            left_out.append(f"{job.name}: {s.get('status', 'no summary')}")
            continue
        variant = " ".join(o for o in s.get("overrides", [])
                           if o not in shared and not o.startswith(("seed=", "rung=", "hydra")))
        rung = rungs.setdefault((variant, s["rung"]), Rung(s["rung"], s["trick"], s["trick_what"], variant))
        rung.losses.append(s["metrics"]["best_val_loss"])
        rung.rates.append(s["metrics"]["tokens_per_s"])
        rung.times.append(time_to_reach(target, read_metrics(job, "val")))
    if not rungs:
        raise UserError(f"no job of {sweep_dir} completed ({'; '.join(left_out) or 'no jobs'})")
    return list(rungs.values()), left_out


def time_to_reach(target: float, evaluations: list[dict]) -> float | None:
    """The run's seconds (`elapsed`) when its validation loss first reached `target`: the first evaluation at or below
    it, interpolated linearly between it and the evaluation before (still above). Where the very first evaluation is
    already there, its own time (an upper bound: nothing was measured before it); None where none reached it."""
    before = None
    for point in evaluations:
        if point["loss"] <= target:
            if before is None:
                return point["elapsed"]
            share = (before["loss"] - target) / (before["loss"] - point["loss"])
            return before["elapsed"] + share * (point["elapsed"] - before["elapsed"])
        before = point
    return None
