"""The analysis of a finished ladder (or IsoFLOP grid): fits, prediction, plots, the table, samples.md and the
sweep's own summary.json. Runs in the process that launched the sweep once every job has ended (analyse_sweep, the
callback trends/conf/scaling.yaml names), or on an existing sweep with `trends scaling --from`."""
from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from trends.errors import UserError
from trends.records import layout
from trends.records.files import write_atomic, write_json_atomic
from trends.records.findings import count, difference
from trends.records.tables import markdown_table, rich_table, write_csv
from trends.scaling import plots
from trends.scaling.fit import fit_power_law, fit_with_uncertainty
from trends.scaling.isoflop import optimum_exponent, valley
from trends.scaling.reach import duration, famous_models
from trends.scaling.rungs import Rung, load_rungs

log = logging.getLogger("trends.scaling")
CHINCHILLA_EXPONENT = 0.5


def analyse(sweep_dir: Path, settings: DictConfig, console: Console | None = None) -> dict:
    """Read the sweep's runs, fit, plot, and write summary.json, scaling.md/.csv and samples.md into `sweep_dir`."""
    sweep_dir = Path(sweep_dir)
    console = console or Console()
    rungs, left_out = load_rungs(sweep_dir)
    isoflop = any(r.budget is not None for r in rungs)
    plots_dir = sweep_dir / layout.PLOTS  # made by the first plot: a sweep that cannot be fitted is left as it was
    result = isoflop_analysis(rungs, plots_dir) if isoflop else ladder_analysis(rungs, settings, plots_dir)
    plots.learning_curves(plots_dir / "learning_curves.png", rungs)
    rows = [r.row() for r in rungs]
    summary = {"status": "completed", "command": "scaling", "mode": "isoflop" if isoflop else "ladder",
               "sweep": str(sweep_dir), **result, "rungs": rows, "left_out": left_out}
    summary.update(finding=finding(summary), lead_plot="isoflop.png" if isoflop else "loss_vs_params.png")
    write_json_atomic(sweep_dir / layout.SUMMARY, summary)
    write_csv(sweep_dir / "scaling.csv", rows)
    write_atomic(sweep_dir / "scaling.md", markdown_table(rows) + "\n")
    _write_samples(sweep_dir / "samples.md", _sample_pair(rungs))
    console.print(rich_table(rows, f"trends scaling — {sweep_dir}"))
    console.print(summary["finding"], markup=False)
    _print_findings(console, summary)
    log.info("scaling analysis written to %s", sweep_dir)
    return summary


def analyse_sweep(sweep_dir: Path, config: DictConfig) -> dict:
    """The end of a `trends scaling` sweep (hydra.callbacks.scaling_analysis), with the sweep's own settings."""
    return analyse(sweep_dir, config.scaling)


def ladder_analysis(rungs: list[Rung], settings: DictConfig, plots_dir: Path) -> dict:
    """L(N) and L(C) with uncertainty and R², the largest rung predicted from the others, the famous models."""
    if len({r.params for r in rungs}) < 3:
        raise UserError(f"a scaling law needs completed runs of 3 or more sizes; this sweep has "
                        f"{len({r.params for r in rungs})}")
    n = np.array([r.params for r in rungs], dtype=float)
    c = np.array([r.flops for r in rungs], dtype=float)
    loss = np.array([r.final_val_loss for r in rungs])
    by_params = fit_with_uncertainty(n, loss, settings.bootstrap)
    by_compute = fit_with_uncertainty(c, loss, settings.bootstrap)
    held_n, predicted, error = _predict_largest(n, loss)
    held_c, _, error_c = _predict_largest(c, loss)
    largest = rungs[-1]
    machine_flops = largest.flops / largest.tokens * largest.tokens_per_s  # what training achieved here, FLOP/s
    famous = famous_models(OmegaConf.to_container(settings.famous), by_params.law, machine_flops,
                           OmegaConf.to_container(settings.accelerator))
    labels = [r.label for r in rungs]
    plots.law_plot(plots_dir / "loss_vs_params.png", n, loss, labels, by_params.law, held_n,
                   xlabel="non-embedding parameters N", title="loss against size (same tokens for every size)")
    plots.law_plot(plots_dir / "loss_vs_compute.png", c, loss, labels, by_compute.law, held_c,
                   xlabel="training compute C (FLOPs)", title="loss against compute",
                   curves=[([t * r.flops / r.tokens for t, _ in r.curve], [v for _, v in r.curve]) for r in rungs])
    plots.reach_plot(plots_dir / "out_of_reach.png", rungs, by_params.law, famous)
    law = by_params.law
    return {
        "headline": "alpha",
        "alpha": round(law.alpha, 4), "E": round(law.E, 4), "A": float(f"{law.A:.4g}"), "r2": round(by_params.r2, 4),
        "prediction_error": None if error is None else round(error, 4),
        "predicted_largest": None if predicted is None else round(predicted, 4),
        "measured_largest": round(float(loss[n == n.max()].mean()), 4),
        "uncertainty": {"sigma": _rounded(by_params.sigma), "interval_68": _rounded(by_params.interval),
                        "method": f"residual bootstrap, {settings.bootstrap} resamples"},
        "compute_law": {**_rounded({"alpha": by_compute.law.alpha, "E": by_compute.law.E, "r2": by_compute.r2}),
                        "A": float(f"{by_compute.law.A:.4g}"),
                        "prediction_error": None if error_c is None else round(error_c, 4)},
        "loss_falls_every_rung": bool(all(np.diff(loss[np.argsort(n, kind="stable")]) < 0)),
        "kaplan": kaplan_note(law.alpha, by_params.sigma["alpha"]),
        "machine_flops": round(machine_flops),
        "famous": [f.as_dict() for f in famous],
        "accelerator": OmegaConf.to_container(settings.accelerator),
    }


def isoflop_analysis(rungs: list[Rung], plots_dir: Path) -> dict:
    """Each budget's valley, its loss-optimal size and tokens per parameter, and N_opt's exponent in C."""
    budgets = sorted({r.budget for r in rungs})
    valleys = []
    for budget in budgets:
        members = [r for r in rungs if r.budget == budget]
        if len(members) >= 3:
            valleys.append(valley(budget, [r.params for r in members], [r.final_val_loss for r in members]))
    if len(valleys) < 2:
        raise UserError("IsoFLOP analysis needs 2 or more budgets with 3 or more completed sizes each")
    exponent = optimum_exponent(valleys)
    plots.isoflop_plot(plots_dir / "isoflop.png", valleys, exponent)
    return {"headline": "n_opt_exponent", "n_opt_exponent": round(exponent, 4),
            "tokens_opt_exponent": round(1 - exponent, 4), "chinchilla_exponent": CHINCHILLA_EXPONENT,
            "chinchilla_tokens_per_param": 20, "every_optimum_inside": all(v.inside for v in valleys),
            "budgets": [v.as_dict() for v in valleys]}


def finding(summary: dict) -> str:
    """The analysis in one sentence. A ladder: the largest size's loss against the smallest's, and the power law's
    exponent with its uncertainty; an IsoFLOP grid: how the loss-optimal size grows with compute, against
    Chinchilla's exponent."""
    rows = summary["rungs"]
    if summary["mode"] == "isoflop":
        top = max(summary["budgets"], key=lambda v: v["budget"])
        exponent = summary["n_opt_exponent"]
        return (f"the loss-optimal size grows as N_opt ∝ C^{exponent:.2f} over {len(summary['budgets'])} compute "
                f"budgets — {difference(exponent, CHINCHILLA_EXPONENT, 2)} Chinchilla's {CHINCHILLA_EXPONENT} — with "
                f"{top['tokens_per_param']:.3g} tokens per parameter at the largest budget (Chinchilla ≈ 20)"
                + ("" if summary["every_optimum_inside"] else "; not every optimum lies inside its grid of sizes"))
    sizes = sorted({r["params"] for r in rows})
    smallest = [r for r in rows if r["params"] == sizes[0]]
    largest = [r for r in rows if r["params"] == sizes[-1]]
    low = float(np.mean([r["final_val_loss"] for r in smallest]))
    high = summary["measured_largest"]
    sigma = summary["uncertainty"]["sigma"]["alpha"]
    return (f"the largest of {len(sizes)} GPT sizes ({_shape(largest[0])}) reaches a validation loss of {high:.3f} "
            f"nats/char — {difference(high, low, 3)} the smallest ({_shape(smallest[0])}: {low:.3f})"
            + (", falling at every step up" if summary["loss_falls_every_rung"] else "")
            + f" — and L(N) = E + A·N^−α fits the ladder with α = {summary['alpha']:.3f} ± {sigma:.3f} "
              f"(R² = {summary['r2']:.3f})")


def _shape(row: dict) -> str:
    return f"{row['n_layer']}×{row['n_embd']}, {count(row['params'])} non-embedding parameters"


def _predict_largest(x: np.ndarray, loss: np.ndarray):
    """The law fitted without the largest x, its prediction there and predicted − measured (None: too few sizes)."""
    rest = x < x.max()
    if len(np.unique(x[rest])) < 3:
        return None, None, None
    law = fit_power_law(x[rest], loss[rest])
    predicted = float(law(x.max()))
    return law, predicted, predicted - float(loss[~rest].mean())


def kaplan_note(alpha: float, sigma: float) -> str:
    """How the measured exponent compares with Kaplan et al.'s, and why a char-level model at this scale differs."""
    return (f"α = {alpha:.3f} ± {sigma:.3f} here. Kaplan et al. (2020) found 0.076 for L(N) = (N_c/N)^α with no "
            "irreducible term, on BPE tokens of WebText2, over six decades of N, each size trained to convergence; "
            "Hoffmann et al. (2022), fitting with an irreducible E as here, found 0.34. This ladder is short (two "
            "decades), gives every size the same small budget of tokens (the larger rungs are further from "
            "converged, which flattens the curve), and predicts characters, whose large irreducible entropy E "
            "absorbs: the exponent describes only the reducible part of the loss, so it is not Kaplan's number.")


def _rounded(values: dict) -> dict:
    return {k: (tuple(round(x, 4) for x in v) if isinstance(v, tuple) else round(v, 4) if abs(v) < 1e4
                else float(f"{v:.4g}")) for k, v in values.items()}


def _sample_pair(rungs: list[Rung]) -> tuple[Rung, Rung]:
    """The smallest and the largest model (in mode=isoflop: at the largest budget)."""
    top = max(r.budget or 0 for r in rungs)
    pool = sorted((r for r in rungs if (r.budget or 0) == top), key=lambda r: r.params)
    return pool[0], pool[-1]


def _write_samples(path: Path, pair: tuple[Rung, Rung]) -> None:
    cells = "".join(f"<td><pre>{html.escape(r.sample)}</pre></td>" for r in pair)
    heads = "".join(f"<th>{html.escape(r.label)}: val loss {r.final_val_loss:.3f}</th>" for r in pair)
    write_atomic(path, "# What a bigger model buys\n\nThe smallest and the largest rung, same prompt (a newline) and "
                    "seed, same temperature.\n\n"
                    f"<table><tr>{heads}</tr><tr>{cells}</tr></table>\n")


def _print_findings(console: Console, summary: dict) -> None:
    if summary["mode"] == "ladder":
        s = summary
        console.print(f"L(N) = {s['E']} + {s['A']:.4g}·N^(−{s['alpha']})  (α ± {s['uncertainty']['sigma']['alpha']}, "
                      f"R² = {s['r2']}); loss falls at every rung: {s['loss_falls_every_rung']}")
        if s["prediction_error"] is not None:
            console.print(f"largest rung predicted from the others: {s['predicted_largest']} against "
                          f"{s['measured_largest']} measured ({s['prediction_error']:+.4f} nats)")
        console.print(s["kaplan"])
        for f in s["famous"]:
            console.print(f"{f['name']} ({f['params']:.3g} params, {f['tokens']:.3g} tokens, {f['flops']:.2g} FLOPs): "
                          f"{duration(f['years_here'])} on this machine at {s['machine_flops'] / 1e9:.0f} GFLOP/s, "
                          f"{f['gpu_hours']:,.0f} GPU-hours on {s['accelerator']['name']} at "
                          f"{s['accelerator']['utilization']:.0%}; the law says loss {f['predicted_loss']:.3f} "
                          "(an extrapolation far outside the data)")
    else:
        for v in summary["budgets"]:
            console.print(f"C = {v['budget']:.2g}: N_opt ≈ {v['n_opt']:,}, {v['tokens_per_param']} tokens/param "
                          f"(Chinchilla ≈ 20), loss {v['loss_opt']}, optimum inside the valley: {v['inside']}")
        console.print(f"N_opt ∝ C^{summary['n_opt_exponent']} (Chinchilla ≈ 0.5)")
