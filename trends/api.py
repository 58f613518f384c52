"""Run a demo from Python (a notebook, a script) and get its record back:

    from trends import run
    r = run("gnn", "model=gat", "data=cora")    # trains in this process, exactly as `trends gnn model=gat data=cora`
    r.headline, r.metrics["test_acc"], r.curve("val", "acc"), r.plots, r.report
    s = run("gnn", "seed=0,1,2", multirun=True)  # a sweep: s.jobs holds one record per job

Bad input raises trends.errors.UserError with the CLI's one-line message; a failed run raises its error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trends import launch
from trends.records import layout
from trends.records.metrics import read_metrics


@dataclass
class Record:
    """What a run (or a sweep) left in its folder."""
    path: Path
    summary: dict = field(repr=False)
    records: list[dict] = field(repr=False)  # metrics.jsonl, one dict per logged point
    plots: list[Path] = field(repr=False)
    report: Path | None = None
    jobs: list[Record] = field(default_factory=list, repr=False)  # a sweep's job records, in job order

    @classmethod
    def load(cls, path: Path) -> Record:
        path = Path(path)
        records = read_metrics(path)
        report = path / "report.html"
        jobs = [cls.load(j) for j in layout.job_folders(path)] if (path / "multirun.yaml").is_file() else []
        return cls(path, layout.read_summary(path), records, sorted((path / layout.PLOTS).glob("*.png")),
                   report if report.is_file() else None, jobs)

    def __repr__(self) -> str:
        head = f", {self.headline[0]}={self.headline[1]:.4g}" if self.headline else ""
        return f"Record({str(self.path)!r}, {self.status}{head}{f', {len(self.jobs)} jobs' if self.jobs else ''})"

    @property
    def status(self) -> str | None:
        return self.summary.get("status")

    @property
    def metrics(self) -> dict:
        return self.summary.get("metrics", {})

    @property
    def headline(self) -> tuple[str, float] | None:
        """(name, value) of the run's headline metric (a sweep's: its analysis's, where it has one)."""
        name = self.summary.get("headline")
        value = self.metrics.get(name, self.summary.get(name)) if name else None
        return (name, value) if value is not None else None

    def curve(self, split: str, metric: str) -> tuple[list, list]:
        """(steps, values) of one metric logged under one split, e.g. curve("val", "loss")."""
        points = [(r["step"], r[metric]) for r in self.records if r.get("split") == split and metric in r]
        return [s for s, _ in points], [v for _, v in points]

    def _repr_html_(self) -> str:  # Jupyter shows a record as its headline and where its report is
        head = f"{self.headline[0]} = {self.headline[1]:.4g}" if self.headline else "no headline"
        return (f"<b>trends {self.summary.get('command', '?')}</b> — {self.status}: {head}<br>"
                f"<code>{self.path}</code>" + (f" · <a href='{self.report}'>report.html</a>" if self.report else ""))


def run(command: str, *overrides: str, smoke: bool = False, multirun: bool = False) -> Record:
    """Train `trends <command> <overrides>` in this process and return its Record (a sweep's with `multirun`, and
    always for the commands that are sweeps: scaling, recipe, distill)."""
    demo = launch.demo_named(command)
    overrides = launch.before_launch(demo, list(overrides), smoke=smoke, say=print,
                                     train=lambda teacher, extra: run(teacher, *extra))
    plan = launch.prepare(demo, overrides, smoke=smoke, multirun=multirun)
    launch.start(plan)
    failed = launch.failed_sweep_analysis(plan.folder)
    if failed:
        raise RuntimeError(failed)
    return Record.load(plan.folder)
