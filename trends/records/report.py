"""report.html: one self-contained page (images inlined as data, charts as inline SVG, no script, no network) for a
run, a sweep, or runs side by side. Written at the end of every run and sweep; `trends report` rebuilds it.

A run's or a sweep's page reads like a finding: first its sentence against its baseline (the summary's `finding`,
which the demo writes; for a sweep without one, the sweep table's best variant against the others), then the figure
that shows it (the summary's `lead_plot`, else the first plot, else the first chart), then the tables; the flat
record (every key of summary.json, the config) is folded away at the end.

Reads only what a run folder holds (summary.json, metrics.jsonl, .hydra/, plots/*.png, samples, tables), so it
knows no demo and works for old runs.
"""
from __future__ import annotations

import base64
import csv
import json
import logging
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader
from omegaconf import OmegaConf

from trends.errors import UserError

from . import layout, lock
from .charts import bar_chart, line_chart
from .files import write_atomic
from .findings import as_sentence, sweep_finding
from .metrics import read_metrics
from .search import Objective, best_index, history, score
from .tables import job_rows, mean_curve, shared_overrides, short

log = logging.getLogger(__name__)
REPORT = "report.html"
MAX_CHARTS = 8  # learning-curve charts per page: the metrics logged most often come first
LEAD_WIDTH = 760  # px: the lead figure, larger than the others
NOT_CURVES = {"step", "epoch", "split", "time", "elapsed"}


@dataclass
class Folder:
    """A run folder (or a sweep's) as the report reads it."""
    path: Path

    @cached_property
    def summary(self) -> dict:
        summary = layout.read_summary(self.path)
        return summary if isinstance(summary, dict) else {}  # a damaged job of a sweep: as if it had none

    @cached_property
    def records(self) -> list[dict]:
        return read_metrics(self.path)

    @cached_property
    def config(self) -> dict[str, Any]:
        """The composed config, flattened to dotted keys."""
        path = self.path / ".hydra" / "config.yaml"
        if not path.is_file():
            return {}
        return flatten(OmegaConf.to_container(_load_yaml(path), resolve=False))

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def overrides(self) -> list[str]:
        return [o for o in self.summary.get("overrides", []) if not o.startswith(("hydra.", "resume="))]

    @property
    def headline(self) -> dict | None:
        name = self.summary.get("headline")
        value = self.summary.get("metrics", {}).get(name, self.summary.get(name)) if name else None
        return {"name": name, "value": fmt(value)} if value is not None else None

    @cached_property
    def curves(self) -> dict[str, dict[str, tuple[list, list]]]:
        """metric → split → (steps, values), from metrics.jsonl."""
        out: dict[str, dict[str, tuple[list, list]]] = {}
        for r in self.records:
            for key, value in r.items():
                if key in NOT_CURVES or not _is_finite(value):  # a diverged run's NaN is not a point of its curve
                    continue
                xs, ys = out.setdefault(key, {}).setdefault(r.get("split", "all"), ([], []))
                xs.append(r.get("step", len(xs)))
                ys.append(value)
        return dict(sorted(out.items(), key=lambda kv: -sum(len(xs) for xs, _ in kv[1].values())))

    @cached_property
    def images(self) -> list[dict]:
        return [{"name": p.name, "data": base64.b64encode(p.read_bytes()).decode(), "width": 560}
                for p in sorted((self.path / layout.PLOTS).glob("*.png"))]


def read_record(path: Path, *, sweeps: bool = True) -> dict:
    """The summary.json of a run folder (or of a sweep's where `sweeps`: {} where its analysis wrote none), read
    strictly. The commands that read a folder the user named (`report`, `runs show`, `runs compare`) check it here
    first: a path that is not a folder trends can read is one line saying what it is instead (missing, a file, a
    folder with no record, a damaged record), never a traceback from deep inside a page."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path} {'is a file' if path.exists() else 'does not exist'}; pass a run or sweep folder "
                        "under outputs/")
    if (path / "multirun.yaml").is_file():
        if not sweeps:
            jobs = layout.job_folders(path)
            raise UserError(f"{path} is a sweep; pass run folders, e.g. its job {jobs[0] if jobs else path / '0'}")
        _load_yaml(path / "multirun.yaml")
    elif not (path / layout.SUMMARY).is_file():
        raise UserError(f"{path} is not a run or sweep folder (no summary.json); pass folders under outputs/")
    return _json_object(path / layout.SUMMARY) if (path / layout.SUMMARY).is_file() else {}


def _json_object(path: Path) -> dict:
    """A JSON file that must hold an object (a summary), or a UserError naming the file and what is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8
        raise UserError(f"{path} cannot be read ({err}); restore it, or pass another folder") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds no JSON object, so it is no run's record; restore it, or pass another folder")
    return data


def _load_yaml(path: Path):
    """A YAML file Hydra wrote (a composed config, multirun.yaml), or a UserError naming the file and, in one line,
    what is wrong with it (the parser's own message runs over several lines)."""
    import yaml

    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path} is damaged ({getattr(err, 'problem', None) or 'not YAML'}{where}); restore it, or "
                        "pass another folder") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path} cannot be read ({err}); restore it, or pass another folder") from None


def write_report(paths: list[Path], out: Path | None = None) -> Path:
    """One folder: its report (a run's or a sweep's), into the folder unless `out` is given; several: the comparison
    (default `compare.html` here)."""
    paths = [Path(p) for p in paths]
    for p in paths:
        read_record(p)
    if len(paths) == 1:
        with lock.hold(paths[0]):  # refused while another process writes the folder: its page would be half a run
            page = sweep_page(paths[0]) if (paths[0] / "multirun.yaml").is_file() else run_page(paths[0])
            return _save(page, Path(out or paths[0] / REPORT))
    sweeps = [str(p) for p in paths if (p / "multirun.yaml").is_file()]
    if sweeps:
        raise UserError(f"compare runs, not sweeps ({', '.join(sweeps)}); pass job folders, e.g. {sweeps[0]}/0")
    return _save(compare_page([Folder(p) for p in paths]), Path(out or "compare.html"))


def _save(page: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render(page))
    return out


# -- the three kinds of page --------------------------------------------------------------------------------------
def run_page(path: Path) -> dict:
    run = Folder(path)
    s = run.summary
    charts = {metric: line_chart(by_split, title=metric, ylabel=metric) for metric, by_split in run.curves.items()}
    lead = lead_figure(run)
    if lead is None and charts:  # no plot: the curve the headline summarises, else the metric logged most often
        shown = curve_of(s["headline"], [run]) if s.get("headline") else None
        metric = shown[0] if shown and shown[0] in charts else next(iter(charts))
        lead = {"chart": charts.pop(metric), "caption": f"{metric}, from metrics.jsonl"}
    sections = [{"title": "Error", "text": s["error"]}] if s.get("error") else []
    sections.append({"title": "Metrics", "table": key_values(s.get("metrics", {}))})
    sections += _tables(path)
    if charts:
        sections.append({"title": "Learning curves", "charts": list(charts.values())[:MAX_CHARTS],
                         "note": "from metrics.jsonl: one line per split (step: the running training record)"})
    figures = [i for i in run.images if i["name"] != (lead or {}).get("image", {}).get("name")]
    if figures:
        sections.append({"title": "Figures", "images": figures})
    for sample in ("samples.txt", "samples.md"):
        if (path / sample).is_file():
            sections.append({"title": "Samples", "text": (path / sample).read_text()[:20_000]})
    details = {k: v for k, v in s.items()
               if k not in ("metrics", "overrides", "versions", "headline", "error", "finding", "lead_plot")}
    sections.append({"title": "The run's record (summary.json)", "fold": True,
                     "table": key_values(details | {f"version of {k}": v for k, v in s.get("versions", {}).items()})})
    sections.append(_config_section(path))
    return {"title": f"trends {s.get('command', '?')} — {path.name}", "status": s.get("status"),
            "subtitle": str(path), "headline": run.headline, "finding": as_sentence(s.get("finding")), "lead": lead,
            "sections": sections, "command": command_line(s.get("command", "?"), run.overrides)}


def sweep_page(path: Path) -> dict:
    sweep = Folder(path)
    jobs = [Folder(j) for j in layout.job_folders(path)]
    rows = job_rows(path)
    shared = shared_overrides([r["overrides"].split() for r in rows])
    rows = [{**r, "overrides": " ".join(short(o) for o in r["overrides"].split() if o not in shared)} for r in rows]
    headlines = list(dict.fromkeys(j.summary.get("headline") for j in jobs if j.summary.get("headline")))
    groups = group_by_variant(jobs)
    labels, axis = variant_labels(list(groups))
    objective = Objective.of_sweep(path)
    judged_by = objective.metric_of(headlines[0] if headlines else None)
    best = best_job(jobs, judged_by, objective.lower(judged_by)) if judged_by else None
    for row in rows:
        row["_best"] = best is not None and row["job"] == best.path.name
    finding = sweep.summary.get("finding")
    if not finding and judged_by:
        finding = sweep_finding({short_variant(v): _values(m, judged_by) for v, m in groups.items()}, judged_by,
                                objective.lower(judged_by), len(jobs))
    charts = [bar_chart(labels, [_mean(m, h) for m in groups.values()], [_std(m, h) for m in groups.values()],
                        title=h, ylabel=h, xlabel=axis)
              for h in headlines if all(_values(m, h) for m in groups.values())]
    curve = curve_of(headlines[0], jobs) if headlines else None
    if curve:
        charts.append(grouped_curves(groups, *curve))
    charts = [c for c in charts if c]
    lead = lead_figure(sweep)
    if lead is None and charts:
        lead = {"chart": charts.pop(0), "caption": "mean over seeds, ± one standard deviation"}
    sections = [{"title": "Error", "text": sweep.summary["error"]}] if sweep.summary.get("error") else []
    sections += _tables(path, skip=("sweep.csv", "sweep_by_seed.csv"))
    counts = Counter(j.summary.get("status", "missing") for j in jobs)
    sections.append({"title": f"Jobs ({', '.join(f'{n} {k}' for k, n in counts.items())})",
                     "table": table(rows), "note": " · ".join(filter(None, [
                         f"every job: {' '.join(shared)}" if shared else None,
                         f"the best job by {judged_by} is highlighted" if best else None]))})
    if objective.search and judged_by:
        sections.append(search_section(jobs, judged_by, objective.lower(judged_by)))
    if any(len(members) > 1 for members in groups.values()):
        sections.append({"title": "Mean ± std over seeds", "table": table(variant_rows(groups, headlines))})
    if charts:
        sections.append({"title": "Across the sweep", "charts": charts,
                         "note": "bars: mean over seeds, error bars ± one standard deviation; curves: mean ± std"})
    figures = [i for i in sweep.images if i["name"] != (lead or {}).get("image", {}).get("name")]
    if figures:
        sections.append({"title": "Figures", "images": figures})
    numbers = {k: v for k, v in sweep.summary.items() if _is_num(v)}
    if numbers:
        sections.append({"title": "Every number of the sweep's analysis (summary.json)", "fold": True,
                         "table": key_values(numbers)})
    task = OmegaConf.select(OmegaConf.load(path / "multirun.yaml"), "hydra.overrides.task", default=[]) \
        if (path / "multirun.yaml").is_file() else []
    command = (jobs[0].summary.get("command") if jobs else None) or sweep.summary.get("command", "?")
    overrides = [o for o in task if not o.startswith(("hydra.", "resume="))]
    return {"title": f"trends {command} sweep — {path.name}", "status": sweep.summary.get("status"),
            "subtitle": f"{path} · {len(jobs)} jobs", "headline": sweep.headline, "finding": as_sentence(finding),
            "lead": lead, "sections": sections, "command": command_line(command, ["-m", *overrides])}


def lead_figure(folder: Folder) -> dict | None:
    """The plot the demo named as its finding's (summary `lead_plot`), else the folder's first plot; None where it
    has none."""
    images = folder.images
    named = folder.summary.get("lead_plot")
    image = next((i for i in images if i["name"] == named), images[0] if images else None)
    return None if image is None else {"image": {**image, "width": LEAD_WIDTH}, "caption": image["name"]}


def search_section(jobs: list[Folder], metric: str, lower: bool) -> dict:
    """A search's optimisation history: each trial's value and the best so far, against the trial number."""
    values = _scores(jobs, metric)
    trials = [int(j.path.name) if j.path.name.isdigit() else i for i, j in enumerate(jobs)]
    done = [(t, v) for t, v in zip(trials, values) if v is not None]
    best = [(t, b) for t, b in zip(trials, history(values, lower)) if b is not None]
    chart = line_chart({"trial": ([t for t, _ in done], [v for _, v in done]),
                        "best so far": ([t for t, _ in best], [b for _, b in best])},
                       title=f"{metric}: optimisation history", xlabel="trial", ylabel=metric) if done else ""
    failed = len(jobs) - len(done)
    return {"title": "Search", "charts": [chart] if chart else [],
            "note": f"{'lower' if lower else 'higher'} is better; {len(done)} trials completed"
                    + (f", {failed} failed (their value is missing)" if failed else "")}


def compare_page(runs: list[Folder]) -> dict:
    names = _unique_names(runs)
    diff = config_diff(runs)
    metric_names = list(dict.fromkeys(k for r in runs for k in r.summary.get("metrics", {})))
    metrics = [{"metric": m, **{n: r.summary.get("metrics", {}).get(m) for n, r in zip(names, runs)}}
               for m in metric_names]
    curves = [r.curves for r in runs]
    shared = [m for m in curves[0] if all(m in c for c in curves[1:])]
    charts = []
    for metric in shared:
        for split in curves[0][metric]:
            series = {n: c[metric][split] for n, c in zip(names, curves) if split in c[metric]}
            if len(series) > 1:
                charts.append(line_chart(series, title=f"{metric} ({split})", ylabel=metric))
    runs_table = [{"run": n, "command": r.summary.get("command"), "status": r.summary.get("status"),
                   "headline": (r.headline or {}).get("name"), "value": (r.headline or {}).get("value"),
                   "path": str(r.path)} for n, r in zip(names, runs)]
    sections = [{"title": "Runs", "table": table(runs_table)},
                {"title": "Config: the keys that differ", "table": table(diff) if diff else None,
                 "note": None if diff else "the configs are the same"},
                {"title": "Metrics", "table": table(metrics)}]
    if charts:
        sections.append({"title": "Curves overlaid", "charts": charts[:MAX_CHARTS]})
    return {"title": f"trends: {len(runs)} runs compared", "status": None, "subtitle": " · ".join(names),
            "headline": None, "sections": sections, "command": None}


# -- pieces ---------------------------------------------------------------------------------------------------------
def config_diff(runs: list[Folder]) -> list[dict]:
    """One row per dotted config key whose value is not the same in every run (absent keys count as different)."""
    names = _unique_names(runs)
    keys = list(dict.fromkeys(k for r in runs for k in r.config))
    missing = object()
    rows = []
    for key in keys:
        values = [r.config.get(key, missing) for r in runs]
        if any(v != values[0] for v in values[1:]):
            rows.append({"key": key, **{n: ("—" if v is missing else v) for n, v in zip(names, values)}})
    return rows


def group_by_variant(jobs: list[Folder]) -> dict[str, list[Folder]]:
    """Completed jobs grouped by their overrides without the seed (and without overrides every job shares)."""
    completed = [j for j in jobs if j.summary.get("status") == "completed"]
    shared = shared_overrides([j.overrides for j in completed])
    groups: dict[str, list[Folder]] = {}
    for j in completed:
        key = " ".join(o for o in j.overrides if not o.startswith("seed=") and o not in shared) or "(defaults)"
        groups.setdefault(key, []).append(j)
    return groups


def short_variant(variant: str) -> str:
    """A variant's overrides as the tables show them (a sampler's long floats cut to 4 digits)."""
    return " ".join(short(o) for o in variant.split())


def variant_labels(variants: list[str]) -> tuple[list[str], str]:
    """Labels for a chart's variants and the name of the axis they lie on: where every variant sets the same keys
    (`distill.method=scratch`, `distill.method=distilbert`), the values alone (`scratch`, `distilbert`) on an axis
    named by the keys (`distill.method`); else the overrides in full."""
    parsed = [[o.partition("=") for o in short_variant(v).split()] for v in variants]
    keys = [[k for k, _, _ in p] for p in parsed]
    if not variants or any(not all(sep for _, sep, _ in p) or k != keys[0] for p, k in zip(parsed, keys)) \
            or not keys[0]:
        return [short_variant(v) for v in variants], ""
    return [", ".join(value for _, _, value in p) for p in parsed], ", ".join(keys[0])


def variant_rows(groups: dict[str, list[Folder]], headlines: list[str]) -> list[dict]:
    rows = []
    for variant, members in groups.items():
        row = {"variant": variant, "seeds": len(members)}
        for h in headlines:
            if _values(members, h):
                row[h] = f"{_mean(members, h):.4g} ± {_std(members, h):.2g}"
        rows.append(row)
    return rows


def curve_of(headline: str, jobs: list[Folder]) -> tuple[str, str] | None:
    """The (metric, split) whose curve the headline summarises: `best_val_loss` → loss on val; else the first
    metric logged under a split whose name the headline contains."""
    curves = next((j.curves for j in jobs if j.records), {})
    words = set(headline.replace("/", "_").split("_"))
    for metric, by_split in curves.items():
        for split in by_split:
            if split in words and set(metric.split("_")) <= words:
                return metric, split
    for metric, by_split in curves.items():
        for split in by_split:
            if split in words:
                return metric, split
    return None


def grouped_curves(groups: dict[str, list[Folder]], metric: str, split: str) -> str:
    """Mean ± std over each variant's seeds of one curve, at the steps all of its jobs logged."""
    labels, axis = variant_labels(list(groups))
    series, spread = {}, {}
    for label, members in zip(labels, groups.values()):
        steps, means, stds = mean_curve([j.curves.get(metric, {}).get(split, ([], [])) for j in members])
        if steps:
            series[label], spread[label] = (steps, means), stds
    return line_chart(series, title=f"{metric} ({split}) by {axis or 'variant'}", ylabel=metric, spread=spread)


def _tables(path: Path, skip: tuple[str, ...] = ()) -> list[dict]:
    """The folder's own CSV tables (a demo's comparison, the scaling ladder), one section each."""
    sections = []
    for csv_path in sorted(path.glob("*.csv")):
        if csv_path.name in skip:
            continue
        with csv_path.open(newline="") as f:
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
        if rows:
            sections.append({"title": csv_path.stem, "table": table(rows)})
    return sections


def _config_section(path: Path) -> dict:
    config = path / ".hydra" / "config.yaml"
    text = config.read_text() if config.is_file() else "(no .hydra/config.yaml)"
    return {"title": "The composed config (.hydra/config.yaml)", "fold": True, "text": text}


def best_job(jobs: list[Folder], metric: str, lower: bool) -> Folder | None:
    """The completed job with the best value of `metric`: the lowest where `lower`, else the highest."""
    best = best_index(_scores(jobs, metric), lower)
    return None if best is None else jobs[best]


def _scores(jobs: list[Folder], metric: str) -> list[float | None]:
    """Each job's value of `metric`; None where it has none, or a value that is not finite (NaN is no score)."""
    values = [score(j.summary.get("status"), j.summary.get("metrics", {}).get(metric)) for j in jobs]
    return [v if _is_finite(v) else None for v in values]


def _values(members: list[Folder], metric: str) -> list[float]:
    return [j.summary["metrics"][metric] for j in members if _is_num(j.summary.get("metrics", {}).get(metric))]


def _mean(members: list[Folder], metric: str) -> float:
    return statistics.fmean(_values(members, metric))


def _std(members: list[Folder], metric: str) -> float:
    """The sample std over the seeds; NaN where a value is not finite (statistics.stdev raises on infinity)."""
    values = _values(members, metric)
    if not all(_is_finite(v) for v in values):
        return math.nan
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _unique_names(runs: list[Folder]) -> list[str]:
    names = [r.name for r in runs]
    return [n if names.count(n) == 1 else f"{n} ({i})" for i, n in enumerate(names)]


def command_line(command: str, overrides: list[str]) -> str:
    quoted = [o if all(c not in o for c in " '\"$[]{}*,") or o == "-m" else f"'{o}'" for o in overrides]
    return " ".join(["trends", command, *quoted])


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(value) if isinstance(value, (list, dict)) else value}


def key_values(mapping: dict) -> dict:
    return table([{"key": k, "value": v if _is_num(v) or v is None else str(v)} for k, v in mapping.items()])


def table(rows: list[dict]) -> dict:
    columns = list(dict.fromkeys(k for r in rows for k in r if not k.startswith("_")))
    return {"columns": columns, "rows": rows}


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


def render(page: dict) -> str:
    # Every value is escaped, whatever the template's name: samples, folder names and overrides are text from the
    # data, and a page must never run what they hold. Only what is built escaped (charts, the tour's sections) is
    # marked `| safe` in the template.
    env = Environment(loader=PackageLoader("trends.records", "."), autoescape=True)
    env.globals["fmt"] = fmt
    template = env.get_template("report.html.j2")
    return template.render(generated=datetime.now().strftime("%Y-%m-%d %H:%M"), **page)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value) -> bool:
    return _is_num(value) and math.isfinite(value)


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def write_report_safely(folder: Path) -> None:
    """report.html for a run or sweep folder; a report that cannot be written costs a warning, never the record."""
    try:
        write_report([folder])
    except Exception as err:  # noqa: BLE001 — the run's own files are written; the page is a view of them
        log.warning("report.html not written: %s: %s", type(err).__name__, err)
