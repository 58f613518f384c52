"""The comparison at the end of a `trends distill` sweep: the teacher and the three students side by side — size,
validation loss and bits/char (mean ± std over seeds), the share of the teacher-to-scratch gap each student closes,
and how much faster the student generates. Writes the sweep's summary.json, distill.md/.csv and two plots, and prints
the table and the findings."""
from __future__ import annotations

import logging
import math
import statistics
from pathlib import Path

import torch
from omegaconf import DictConfig
from rich.console import Console

from trends.core.device import resolve_device
from trends.distill import plots
from trends.distill.findings import comparison_finding
from trends.distill.students import Cohort, Student, cohorts, load_students
from trends.records import layout
from trends.records.files import write_atomic, write_json_atomic
from trends.records.tables import markdown_table, rich_table, write_csv
from trends.text.sample import decoding_rates, load_gpt_run

log = logging.getLogger("trends.distill")
METHODS = ("scratch", "soft_targets", "distilbert")  # the table's order: the baseline first
HEADLINE = "val_loss/distilbert"


def analyse(sweep_dir: Path, config: DictConfig | None = None, console: Console | None = None) -> dict:
    """Read the sweep's students; write the table, the plots and the sweep's summary.json (hydra.callbacks
    .distill_analysis calls it with the sweep's config, which it does not need: everything is in the job folders)."""
    sweep_dir = Path(sweep_dir)
    console = console or Console()
    students, left_out = load_students(sweep_dir)
    groups = sorted(cohorts(students), key=lambda c: (c.variant, METHODS.index(c.method)))
    variants = sorted({c.variant for c in groups})
    speeds = decoding_speeds(students, config.distill.speed_chars if config else 500,
                             resolve_device(config.device if config else "auto"))
    rows, findings, sentence = [], {}, None
    for variant in variants:
        mine = {c.method: c for c in groups if c.variant == variant}
        variant_rows, variant_findings = compare(mine, speeds)
        sentence = sentence or comparison_finding(variant_rows, variant if len(variants) > 1 else "")
        rows += [{"variant": variant or "(defaults)", **r} for r in variant_rows] if len(variants) > 1 \
            else variant_rows
        suffix = f"[{variant}]" if len(variants) > 1 else ""
        findings.update({f"{key}{suffix}": value for key, value in variant_findings.items()})
    plots_dir = sweep_dir / layout.PLOTS
    plots.val_curves(plots_dir / "val_curves.png", groups, findings)
    plots.size_loss_speed(plots_dir / "size_loss_speed.png", rows)
    summary = {"status": "completed", "command": "distill", "sweep": str(sweep_dir),
               "headline": next((k for k in findings if k.startswith(HEADLINE)), next(iter(findings))),
               "finding": sentence, "lead_plot": "val_curves.png", **findings, "students": rows,
               "left_out": left_out}
    write_json_atomic(sweep_dir / layout.SUMMARY, summary)
    write_csv(sweep_dir / "distill.csv", rows)
    write_atomic(sweep_dir / "distill.md", markdown_table(rows) + "\n")
    console.print(rich_table(rows, f"trends distill — {sweep_dir}"))
    if sentence:
        console.print(sentence, markup=False)
    for line in describe(findings):
        console.print(line)
    log.info("distill comparison written to %s", sweep_dir)
    return summary


def decoding_speeds(students: list[Student], chars: int, device) -> dict[str, tuple[float, float]]:
    """Characters/s with and without the key/value cache (`trends sample`'s decoding, `chars` long), timed here for
    each teacher and each student shape on one device, in turns, the median of several rounds: keyed by the
    teacher's folder and by the student's shape. (Timing inside the jobs would measure whatever else the machine ran
    at that moment.)"""
    folders = {**{s.teacher: Path(s.teacher) for s in students}, **{s.shape: s.job for s in students}}
    with torch.inference_mode():
        models = {key: load_gpt_run(run_dir, device)[0] for key, run_dir in folders.items()}
        cached, uncached = decoding_rates(models, chars, cache=True), decoding_rates(models, chars, cache=False)
    speeds = {key: (cached[key], uncached[key]) for key in models}
    log.info("decoding speeds (chars/s, cached and not): %s", speeds)
    return speeds


def compare(by_method: dict[str, Cohort], speeds: dict[str, tuple[float, float]]) -> tuple[list[dict], dict]:
    """The rows (teacher first) and the summary's findings for the students of one variant."""
    any_cohort = next(iter(by_method.values()))
    scratch = by_method.get("scratch")
    teacher_loss = any_cohort.mean("teacher_val_loss")
    teacher_params = any_cohort.students[0].teacher_params
    teacher_speed = speeds[any_cohort.students[0].teacher]
    rows = [{"model": "teacher", "params": teacher_params, "params_%": 100.0, "seeds": 1,
             "val_loss": round(teacher_loss, 4), "val_loss_std": None, "val_bpc": round(teacher_loss / math.log(2), 4),
             "gap_closed": 1.0 if scratch else None, "vs_scratch_sigmas": None,
             "chars_per_s": round(teacher_speed[0]), "chars_per_s_uncached": round(teacher_speed[1]),
             "speedup": 1.0, "speedup_uncached": 1.0}]
    findings = {"val_loss/teacher": round(teacher_loss, 4), "params/teacher": teacher_params}
    for method in [m for m in METHODS if m in by_method]:
        c = by_method[method]
        speed = speeds[c.students[0].shape]
        loss, std = c.mean("best_val_loss"), c.std("best_val_loss")
        row = {"model": method, "params": c.students[0].params, "params_%": c.mean("params_percent"),
               "seeds": len(c.students), "val_loss": round(loss, 4), "val_loss_std": round(std, 4),
               "val_bpc": round(loss / math.log(2), 4), "gap_closed": 0.0 if method == "scratch" else None,
               "vs_scratch_sigmas": None, "chars_per_s": round(speed[0]), "chars_per_s_uncached": round(speed[1]),
               "speedup": round(speed[0] / teacher_speed[0], 3),
               "speedup_uncached": round(speed[1] / teacher_speed[1], 3)}
        findings.update({f"val_loss/{method}": row["val_loss"], f"val_loss_std/{method}": row["val_loss_std"],
                         f"val_bpc/{method}": row["val_bpc"]})
        if scratch is not None and method != "scratch":
            gap = gap_closed(scratch.mean("best_val_loss"), loss, teacher_loss)
            sigmas = margin_in_sigmas(scratch.values("best_val_loss"), c.values("best_val_loss"))
            row.update(gap_closed=gap, vs_scratch_sigmas=sigmas)
            findings.update({f"gap_closed/{method}": gap, f"vs_scratch_sigmas/{method}": sigmas})
        rows.append(row)
    students = rows[1:]
    findings.update({
        "params/student": students[0]["params"], "params_percent": students[0]["params_%"],
        "chars_per_s/teacher": rows[0]["chars_per_s"],
        "chars_per_s/student": round(sum(r["chars_per_s"] for r in students) / len(students)),
        "generation_speedup": round(sum(r["speedup"] for r in students) / len(students), 3),
        "chars_per_s_uncached/teacher": rows[0]["chars_per_s_uncached"],
        "chars_per_s_uncached/student": round(sum(r["chars_per_s_uncached"] for r in students) / len(students)),
        "generation_speedup_uncached": round(sum(r["speedup_uncached"] for r in students) / len(students), 3),
    })
    return rows, findings


def gap_closed(scratch: float, student: float, teacher: float) -> float | None:
    """The share of the teacher-to-scratch loss gap a student closes: 0 = no better than scratch, 1 = the teacher."""
    return round((scratch - student) / (scratch - teacher), 3) if scratch != teacher else None


def margin_in_sigmas(baseline: list[float], student: list[float]) -> float | None:
    """How far the student's mean loss lies below the baseline's, in standard deviations of the difference of one
    seed of each (√(s_b² + s_s²)); None with fewer than two seeds a side."""
    if min(len(baseline), len(student)) < 2:
        return None
    spread = math.sqrt(statistics.variance(baseline) + statistics.variance(student))
    return round((statistics.fmean(baseline) - statistics.fmean(student)) / spread, 2) if spread > 0 else math.inf


def describe(findings: dict) -> list[str]:
    """The findings in sentences (for the default variant, or the only one)."""
    lines = []
    teacher = findings.get("val_loss/teacher")
    for method in ("soft_targets", "distilbert"):
        if f"val_loss/{method}" not in findings or "val_loss/scratch" not in findings:
            continue
        diff = findings[f"val_loss/{method}"] - findings["val_loss/scratch"]
        sigmas = findings.get(f"vs_scratch_sigmas/{method}")
        gap = findings.get(f"gap_closed/{method}")
        lines.append(f"{method}: val loss {findings[f'val_loss/{method}']:.4f} vs scratch "
                     f"{findings['val_loss/scratch']:.4f} ({diff:+.4f} nats"
                     + (f", {sigmas:.1f} σ" if sigmas is not None else "") + ")"
                     + (f", closing {gap:.0%} of the gap to the teacher's {teacher:.4f}" if gap is not None else ""))
    if "generation_speedup" in findings:
        lines.append(f"the student ({findings['params_percent']:.0f} % of the teacher's parameters) generates "
                     f"{findings['generation_speedup']:.2f}× as fast with the key/value cache "
                     f"({findings['chars_per_s/student']:,} vs {findings['chars_per_s/teacher']:,} chars/s), "
                     f"{findings['generation_speedup_uncached']:.2f}× without it "
                     f"({findings['chars_per_s_uncached/student']:,} vs {findings['chars_per_s_uncached/teacher']:,})")
    return lines

