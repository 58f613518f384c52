"""A finished `trends distill` sweep read back: one Student per completed job folder, grouped into Cohorts (one
method of one variant, over the seeds), from each job's summary.json and metrics.jsonl."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from trends.errors import UserError
from trends.records import layout
from trends.records.metrics import read_metrics
from trends.records.sweep import jobs_of
from trends.records.tables import mean_curve


@dataclass
class Student:
    job: Path
    method: str
    seed: int
    variant: str  # the overrides, other than the seed and the method, that differ between the sweep's jobs
    metrics: dict
    params: int
    shape: str  # layers × width (heads): students of one shape decode at one speed
    teacher: str  # the teacher's run folder
    teacher_params: int
    curve: list = field(default_factory=list)  # (step, val loss) at every evaluation


@dataclass
class Cohort:
    """One method of one variant: its students over the seeds."""
    variant: str
    method: str
    students: list[Student]

    def values(self, metric: str) -> list[float]:
        return [s.metrics[metric] for s in self.students if isinstance(s.metrics.get(metric), (int, float))]

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values(metric))

    def std(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def mean_curve(self) -> tuple[list[int], list[float], list[float]]:
        """Steps, and the mean and std of the val loss over the seeds at each step all of them reached."""
        return mean_curve([([step for step, _ in s.curve], [loss for _, loss in s.curve]) for s in self.students])


def load_students(sweep_dir: Path) -> tuple[list[Student], list[str]]:
    """The completed students, and one line for each job left out (not completed); a UserError where none is, or
    where `sweep_dir` is not a `trends distill` sweep (`trends distill --from` takes any path)."""
    jobs = jobs_of(Path(sweep_dir), "distill", example="0_scratch/, 1_soft_targets/")
    summaries = {job: layout.read_summary(job) for job in jobs}
    keys = _varying_keys([s.get("overrides", []) for s in summaries.values()])
    students, left_out = [], []
    for job, summary in summaries.items():
        if summary.get("status") != "completed" or "method" not in summary:
            left_out.append(f"{job.name}: {summary.get('status', 'no summary')}")
            continue
        variant = " ".join(o for o in summary.get("overrides", []) if o.split("=", 1)[0] in keys)
        shape = summary["student"]
        students.append(Student(job, summary["method"], summary.get("seed", 0), variant, summary["metrics"],
                                summary["params"], f"{shape['n_layer']}×{shape['n_embd']} ({shape['n_head']} heads)",
                                summary["teacher"], summary["teacher_params"], _val_curve(job)))
    if not students:
        raise UserError(f"no student of {sweep_dir} completed ({'; '.join(left_out) or 'no jobs'})")
    return students, left_out


def cohorts(students: list[Student]) -> list[Cohort]:
    groups: dict[tuple[str, str], list[Student]] = {}
    for s in students:
        groups.setdefault((s.variant, s.method), []).append(s)
    return [Cohort(variant, method, members) for (variant, method), members in groups.items()]


def _varying_keys(override_lists: list[list[str]]) -> set[str]:
    values: dict[str, set[str]] = {}
    for overrides in override_lists:
        for o in overrides:
            key, _, value = o.partition("=")
            values.setdefault(key, set()).add(value)
    return {k for k, v in values.items() if len(v) > 1 and k not in ("seed", "distill.method")
            and not k.startswith("hydra")}


def _val_curve(job: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(job, "val")]
