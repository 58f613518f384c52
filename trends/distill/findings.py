"""`trends distill`'s findings, one sentence each for the top of a report: the sweep's (its best-informed student
against the same student from scratch, and its decoding speed-up; analysis.py writes it into the sweep's summary) and
one student's (against its teacher on the same validation windows; train.py writes it into the job's summary)."""
from __future__ import annotations

from trends.records.findings import difference

STUDENTS = {"distilbert": "the DistilBERT-style student", "soft_targets": "the student taught by soft targets",
            "scratch": "the student trained from scratch"}


def comparison_finding(rows: list[dict], variant: str = "") -> str | None:
    """One variant's table (compare's rows: the teacher, then each method) in one sentence: the best-informed
    student against the same student from scratch (else against the teacher), and its decoding speed-up."""
    by = {r["model"]: r for r in rows}
    teacher = by.get("teacher")
    method = next((m for m in ("distilbert", "soft_targets", "scratch") if m in by), None)
    if teacher is None or method is None:
        return None
    student, scratch = by[method], by.get("scratch")
    seeds = f" (mean of {student['seeds']} seeds)" if student["seeds"] > 1 else ""
    if scratch is not None and method != "scratch":
        sigmas = student.get("vs_scratch_sigmas")
        baseline = (f"{difference(student['val_loss'], scratch['val_loss'], 3)} the same student from scratch "
                    f"({_loss(scratch)}" + (f", {sigmas:.1f} σ" if sigmas is not None else "") + ")")
    else:
        baseline = (f"{difference(student['val_loss'], teacher['val_loss'], 3)} its teacher "
                    f"({teacher['val_loss']:.3f})")
    speed = student["speedup"]
    decodes = f"decodes {speed:.2f}× faster" if speed >= 1 else f"decodes at {speed:.2f}× the teacher's speed"
    return (f"{'at ' + variant + ', ' if variant else ''}{STUDENTS[method]}, {student['params_%']:.0f} % of the "
            f"teacher's parameters, reaches a validation loss of {student['val_loss']:.3f} nats/char{seeds} — "
            f"{baseline} — and {decodes}")


def _loss(row: dict) -> str:
    std = row.get("val_loss_std")
    return f"{row['val_loss']:.3f}" + (f" ± {std:.3f}" if row["seeds"] > 1 and std is not None else "")


def student_finding(summary: dict) -> str | None:
    """One student job's summary (`method`, `metrics.best_val_loss`, `teacher_val_loss`, `params_percent`) in one
    sentence; None before the run has them."""
    metrics = summary.get("metrics", {})
    loss, teacher = metrics.get("best_val_loss"), metrics.get("teacher_val_loss")
    if loss is None or teacher is None or summary.get("method") not in STUDENTS:
        return None
    share = f", {metrics['params_percent']:.0f} % of the teacher's parameters," if "params_percent" in metrics else ""
    return (f"{STUDENTS[summary['method']]}{share} reaches a best validation loss of {loss:.3f} nats/char — "
            f"{difference(loss, teacher, 3)} its teacher ({teacher:.3f} on the same validation windows)")
