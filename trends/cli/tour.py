"""`trends tour`: every demo in turn (trends/conf/tour.yaml lists them), each an ordinary `trends` command in its own
process, then one page: for each trend what the lecture claims, the command, the headline against its baseline and
the published reference, and its figure.

The tour keeps its state in `<tour>/tour.json`: a finished demo is not run again, an interrupted one continues from
its checkpoint (`--resume`), a failed one is shown on the page and the others still run.
"""
from __future__ import annotations

import base64
import importlib.resources
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from trends.api import Record
from trends.clock import Stopwatch
from trends.core.data import data_root
from trends.errors import UserError
from trends.records import layout
from trends.records.files import write_atomic, write_json_atomic

MODES = ("full", "quick", "smoke")


@dataclass
class Finding:
    headline: str  # what the run reached, in words and numbers
    baseline: str  # what it is measured against
    beats: bool


def stages() -> list[dict]:
    text = importlib.resources.files("trends.conf").joinpath("tour.yaml").read_text()
    return OmegaConf.to_container(OmegaConf.create(text))["stages"]


def run_tour(mode: str, folder: Path, only: list[str] | None = None, extra: list[str] | None = None) -> int:
    """Run the stages not yet finished, then write `<folder>/tour.html`; 130 after Ctrl-C, 1 if a stage failed."""
    chosen = [s for s in stages() if not only or s["name"] in only]
    unknown = set(only or []) - {s["name"] for s in stages()}
    if unknown:
        raise UserError(f"--only {','.join(sorted(unknown))}: not a stage; the stages: "
                        f"{', '.join(s['name'] for s in stages())}")
    extra_by_stage = _extra_overrides(extra or [], [s["name"] for s in chosen])
    folder.mkdir(parents=True, exist_ok=True)
    state = _load_state(folder)
    watch = Stopwatch.started()
    for i, stage in enumerate(chosen, start=1):
        name, previous = stage["name"], state.get(stage["name"], {})
        if previous.get("status") == "completed":
            print(f"[{i}/{len(chosen)}] {name}: done before ({previous['run']}), not run again", flush=True)
            continue
        argv = _stage_argv(stage, mode, state, extra_by_stage.get(name, []), folder, previous)
        print(f"[{i}/{len(chosen)}] {name}: trends {' '.join(argv)}", flush=True)
        began = time.time()
        code, seconds = _run_stage(argv, folder)
        run = _newest_run(folder, stage["command"], since=began)
        status = _status(folder / run) if run else None
        state[name] = {"command": " ".join(["trends", *argv]), "run": run, "exit_code": code,
                       "status": status if code in (0, 130) and status else ("interrupted" if code == 130 else
                                                                              "failed"),
                       "seconds": round(previous.get("seconds", 0) + seconds, 1)}
        _save_state(folder, state)
        if code == 130:
            write_page(folder, chosen, state, mode)
            print(f"interrupted; `trends tour{_flag(mode)}` continues where it stopped", file=sys.stderr)
            return 130
    state["_total_seconds"] = round(state.get("_total_seconds", 0) + watch.stop(), 1)
    _save_state(folder, state)
    page = write_page(folder, chosen, state, mode)
    failed = [s["name"] for s in chosen if state.get(s["name"], {}).get("status") != "completed"]
    print(f"the tour: {page}" + (f" ({', '.join(failed)} did not complete)" if failed else ""))
    return 1 if failed else 0


def _stage_argv(stage: dict, mode: str, state: dict, extra: list[str], folder: Path, previous: dict) -> list[str]:
    if previous.get("status") == "interrupted" and previous.get("run"):
        run = folder / previous["run"]
        if layout.checkpoint_of(run).is_file() or (run / "multirun.yaml").is_file():
            return [stage["command"], "--resume", str(run)]  # continues exactly where Ctrl-C stopped it
    overrides = stage["quick"] if mode == "quick" else stage["full"]
    lm_run = state.get("lm", {}).get("run") if state.get("lm", {}).get("status") == "completed" else None
    out = []
    for o in overrides:
        if "{run:lm}" in o:
            if lm_run is None:
                continue  # no tour teacher: the command finds or trains one itself
            o = o.replace("{run:lm}", str((folder / lm_run).resolve()))
        out.append(o.replace("{data}", str(data_root(None))))
    if mode == "smoke":  # the demos' own offline smoke data; only the stage's sweep and teacher are kept
        out = ["--smoke", *[o for o in out if o in ("-m",) or o.startswith(("model=", "teacher="))]]
    return [stage["command"], *out, *extra]


def _run_stage(argv: list[str], folder: Path) -> tuple[int, float]:
    """The stage in its own process (its progress bars on this terminal). Ctrl-C reaches it directly (one process
    group): it saves and exits 130, and the tour waits for that instead of dying first."""
    env = {**os.environ, "TRENDS_OUTPUTS": str(folder / "runs")}
    with Stopwatch() as watch:
        proc = subprocess.Popen([sys.executable, "-m", "trends", *argv], env=env)
        previous = signal.signal(signal.SIGINT, lambda *_: None)
        try:
            code = proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    return code, watch.seconds


def _newest_run(folder: Path, command: str, since: float) -> str | None:
    """The run or sweep folder the stage wrote to (relative to the tour folder): the newest under runs/<command>/
    changed since it began (none where bad input stopped it before any folder was kept)."""
    base = folder / "runs" / command
    candidates = [p for p in [*base.glob("*"), *(base / "multirun").glob("*")]
                  if p.is_dir() and p.name != "multirun" and _changed(p) >= since - 1]
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    return str(newest.relative_to(folder))


def _changed(run: Path) -> float:
    """When a run or sweep folder last recorded something (a resumed one rewrites its summary)."""
    marks = [run / layout.SUMMARY, run / "multirun.yaml", *run.glob(f"*/{layout.SUMMARY}")]
    return max((m.stat().st_mtime for m in marks if m.is_file()), default=run.stat().st_mtime)


def _status(run: Path) -> str | None:
    """A run's status; a sweep's: its analysis's if it failed, else completed when every job completed."""
    own = layout.read_summary(run).get("status")
    if not (run / "multirun.yaml").is_file() or own == "failed":
        return own
    jobs = [layout.read_summary(j).get("status") for j in layout.job_folders(run)]
    if jobs and all(j == "completed" for j in jobs):
        return "completed"
    return "interrupted" if "interrupted" in jobs else "failed"


def _extra_overrides(extra: list[str], names: list[str]) -> dict[str, list[str]]:
    """`--set STAGE:key=value` → {STAGE: [key=value]}."""
    out: dict[str, list[str]] = {}
    for item in extra:
        name, sep, override = item.partition(":")
        if not sep or name not in names or "=" not in override:
            raise UserError(f"--set {item}: write STAGE:key=value with STAGE one of {', '.join(names)}")
        out.setdefault(name, []).append(override)
    return out


# -- the page -------------------------------------------------------------------------------------------------------
def findings(name: str, record: Record) -> Finding | None:
    """The stage's headline against its baseline, read from its run or sweep folder."""
    m, s = record.metrics, record.summary
    try:
        if name == "lm":
            uniform = math.log(s["vocab_size"])
            return Finding(f"best val loss {m['best_val_loss']:.3f} nats/char ({m['best_val_bpc']:.2f} bits)",
                           f"a uniform guess over its {s['vocab_size']} characters: {uniform:.3f}",
                           m["best_val_loss"] < uniform)
        if name == "scaling":
            rungs, sigma = s["rungs"], s["uncertainty"]["sigma"]["alpha"]
            return Finding(f"L(N) = E + A·N^−α with α = {s['alpha']:.3f} ± {sigma:.3f}, R² = {s['r2']:.3f} over "
                           f"{len(rungs)} sizes", f"the smallest model: {rungs[0]['final_val_loss']:.3f} → the "
                           f"largest: {rungs[-1]['final_val_loss']:.3f}", bool(s["loss_falls_every_rung"]))
        if name == "recipe":
            first, last = s["rungs"][0], s["rungs"][-1]
            return Finding(f"{last['trick']}: best val loss {last['val_loss']:.3f} nats/char, "
                           f"{len(s['rungs']) - 1} tricks after GPT-2's recipe",
                           f"{first['trick']} (the first rung): {first['val_loss']:.3f}",
                           last["val_loss"] < first["val_loss"])
        if name == "distill":
            return Finding(f"DistilBERT student {s['val_loss/distilbert']:.3f} (teacher "
                           f"{s['val_loss/teacher']:.3f}), {s['generation_speedup']:.2f}× faster generation",
                           f"the same student from scratch: {s['val_loss/scratch']:.3f}",
                           s["val_loss/distilbert"] < s["val_loss/scratch"])
        if name == "gnn":
            acc = {_model(j): j.metrics["test_acc"] for j in record.jobs if j.status == "completed"}
            return Finding(f"GCN test accuracy {acc['gcn']:.1f} %", f"an MLP on the words alone: {acc['mlp']:.1f} %",
                           acc["gcn"] > acc["mlp"])
        if name in ("contrastive", "pretext"):
            return Finding(f"kNN accuracy {m['knn_acc']:.3f}",
                           f"the same encoder untrained: {m['random_init_knn_acc']:.3f}",
                           m["knn_acc"] > m["random_init_knn_acc"])
        if name == "vit-vs-cnn":
            largest = max(s["table"]["resnet"], key=float)
            cnn, vit = s["table"]["resnet"][largest], s["table"]["vit"][largest]
            return Finding(f"CNN {100 * cnn:.1f} % at {s['train_images'][largest]:,} training images",
                           f"the ViT: {100 * vit:.1f} %", cnn > vit)
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    return None


def _model(job: Record) -> str:
    return next(o.split("=", 1)[1] for o in job.summary.get("overrides", []) if o.startswith("model="))


def write_page(folder: Path, chosen: list[dict], state: dict, mode: str) -> Path:
    from trends.records.report import render

    sections = []
    for stage in chosen:
        done = state.get(stage["name"], {})
        run = _inside(folder, done.get("run"))
        record = Record.load(run) if run and run.is_dir() else None
        finding = findings(stage["name"], record) if record and done.get("status") == "completed" else None
        sections.append({"title": stage["title"], "html": _stage_html(stage, done, record, finding, folder)})
    total = _number(state.get("_total_seconds"))
    subtitle = (f"{mode} tour · {sum(1 for s in chosen if state.get(s['name'], {}).get('status') == 'completed')}"
                f"/{len(chosen)} trends completed" + (f" · {total / 60:.1f} min" if total else ""))
    page = folder / "tour.html"
    write_atomic(page, render({"title": "The deep-learning trends, run on this machine", "status": None,
                               "subtitle": subtitle, "headline": None, "sections": sections, "command": None}))
    return page


def _stage_html(stage: dict, done: dict, record: Record | None, finding: Finding | None, folder: Path) -> str:
    from html import escape

    parts = [f'<div class="claim">{escape(stage["claim"])}</div>']
    parts.append(f'<p><code class="command">{escape(done.get("command", "trends " + stage["command"]))}</code></p>')
    status = done.get("status", "not run")
    if finding:
        verdict = "beats" if finding.beats else "misses"
        parts.append(f'<p><b>{escape(finding.headline)}</b><br>against {escape(finding.baseline)}: '
                     f'<span class="verdict {verdict}">{"beats it" if finding.beats else "does not beat it"}'
                     f'</span></p>')
    else:
        parts.append(f'<p><span class="status {escape(status)}">{escape(status)}</span> '
                     + (f'exit code {escape(str(done["exit_code"]))}' if done.get("exit_code") else "") + "</p>")
        error = (record.summary.get("error", "") if record else "") or ""
        if error:
            parts.append(f"<pre>{escape(error[-1500:])}</pre>")
    parts.append(f'<p class="muted">Published: {escape(stage["reference"])}'
                 + (f' · {_number(done.get("seconds")) / 60:.1f} min here' if _number(done.get("seconds")) else "")
                 + "</p>")
    if record is not None:
        figure = (record.path / layout.PLOTS / stage["figure"]) if stage.get("figure") else None
        if figure is not None and figure.is_file():
            data = base64.b64encode(figure.read_bytes()).decode()
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{escape(stage["figure"])}" '
                         f'style="max-width: 620px"></figure>')
        if record.report:
            link = escape(str(record.report.relative_to(folder.resolve())))
            parts.append(f'<p><a href="{link}">the full report</a></p>')
    return "".join(parts)


def _inside(folder: Path, run) -> Path | None:
    """A stage's run folder as tour.json names it, only where it lies inside the tour's folder (the page reads it)."""
    if not isinstance(run, str) or not run:
        return None
    path = (folder / run).resolve()
    return path if folder.resolve() in path.parents else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _load_state(folder: Path) -> dict:
    """What the last tour in `folder` finished. A tour.json that cannot be read is kept aside as tour.json.bak, and
    said: the stages then run again, but nothing is silently forgotten."""
    path = folder / "tour.json"
    try:
        state = json.loads(path.read_text())
        if isinstance(state, dict):
            return state
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        pass
    path.replace(path.with_name("tour.json.bak"))
    print(f"warning: {path} is damaged; kept as tour.json.bak, and the tour starts over", file=sys.stderr)
    return {}


def _save_state(folder: Path, state: dict) -> None:
    write_json_atomic(folder / "tour.json", state)


def _flag(mode: str) -> str:
    return "" if mode == "full" else f" --{mode}"
