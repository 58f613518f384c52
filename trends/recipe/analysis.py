"""The comparison at the end of a `trends recipe` sweep. Per rung of the ladder: the best validation loss (mean ± std
over the seeds), its change from the rung before and from the first (GPT-2's recipe) in nats and in σ, training
tokens/s, and the seconds to a target loss (nanoGPT's CPU recipe's 1.886). Writes the waterfall of each trick's gain,
the sweep's summary.json and recipe.md/.csv, and prints the table and the finding. Runs in the process that launched
the sweep once its last job has ended (the callback trends/conf/recipe.yaml names), or with `trends recipe --from`."""
from __future__ import annotations

import logging
import statistics
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from trends.recipe import plots
from trends.recipe.findings import describe, ladder_finding
from trends.recipe.ladder import Rung, load_ladder
from trends.records import layout
from trends.records.files import write_atomic, write_json_atomic
from trends.records.findings import pooled_std
from trends.records.tables import markdown_table, rich_table, write_csv

log = logging.getLogger("trends.recipe")
TARGET = 1.886  # nanoGPT's CPU recipe's best val loss on Tiny Shakespeare (ladder.target_loss: the config's say)


def analyse(sweep_dir: Path, config: DictConfig | None = None, console: Console | None = None) -> dict:
    """Read the sweep's rungs; write the table, the waterfall and the sweep's summary.json (hydra.callbacks
    .recipe_analysis calls it with the sweep's config, for ladder.target_loss)."""
    sweep_dir = Path(sweep_dir)
    console = console or Console()
    target = OmegaConf.select(config, "ladder.target_loss", default=TARGET) if config is not None else TARGET
    rungs, left_out = load_ladder(sweep_dir, target)
    ladders = {variant: ladder_rows([r for r in rungs if r.variant == variant], target)
               for variant in dict.fromkeys(r.variant for r in rungs)}  # in the sweep's order
    several = len(ladders) > 1
    rows = [{"variant": v, **r} if several else r for v, ladder in ladders.items() for r in ladder]
    suffix = {variant: f"[{variant}]" if several else "" for variant in ladders}  # on the summary's keys
    keys = {k: v for variant, ladder in ladders.items() for k, v in summary_keys(ladder, suffix[variant]).items()}
    first_variant, first_ladder = next(iter(ladders.items()))
    sentence = ladder_finding(first_ladder, target, first_variant if several else "")
    plots.waterfall(sweep_dir / layout.PLOTS / "waterfall.png", ladders, target)
    summary = {"status": "completed", "command": "recipe", "sweep": str(sweep_dir),
               "headline": f"val_loss/{first_ladder[-1]['rung']}{suffix[first_variant]}",
               "finding": sentence, "lead_plot": "waterfall.png", "target_loss": target, **keys,
               "tricks": {r.name: r.what for r in rungs}, "rungs": rows, "left_out": left_out}
    write_json_atomic(sweep_dir / layout.SUMMARY, summary)
    write_csv(sweep_dir / "recipe.csv", rows)
    write_atomic(sweep_dir / "recipe.md", markdown(rows, rungs, target))
    # The terminal's table without the tricks' labels (the rung names them; the lines below say what each is).
    console.print(rich_table([{k: v for k, v in r.items() if k != "trick"} for r in rows],
                             f"trends recipe — {sweep_dir}"))
    for line in ([sentence] if sentence else []) + describe(first_ladder, summary["tricks"]):
        console.print(line, markup=False)
    log.info("recipe comparison written to %s", sweep_dir)
    return summary


def ladder_rows(ladder: list[Rung], target: float) -> list[dict]:
    """One row per rung, in ladder order, each compared with the rung before and with the first."""
    first = ladder[0]
    return [{"rung": rung.name, "trick": rung.label, "seeds": len(rung.losses), "val_loss": round(rung.loss, 4),
             "val_loss_std": _rounded(rung.std, 4), **change("before", rung, before),
             **change(first.name, rung, first if rung is not first else None),
             "tokens_per_s": round(statistics.fmean(rung.rates)),
             f"s_to_{target:g}": _rounded(rung.time_to_target, 1)}
            for before, rung in zip([None, *ladder], ladder)]


def change(name: str, rung: Rung, baseline: Rung | None) -> dict:
    """`vs_<name>`: the rung's mean loss minus the baseline's, in nats (negative: lower, better), and
    `vs_<name>_sigmas`, the same in σ, the pooled standard deviation of one seed of the two (None with too few seeds
    to know it)."""
    if baseline is None:
        return {f"vs_{name}": None, f"vs_{name}_sigmas": None}
    nats = rung.loss - baseline.loss
    sigma = pooled_std(baseline.losses, rung.losses)
    return {f"vs_{name}": round(nats, 4), f"vs_{name}_sigmas": round(nats / sigma, 1) if sigma else None}


def summary_keys(rows: list[dict], suffix: str = "") -> dict:
    """The summary's numbers for one ladder, rung by rung in ladder order: `val_loss/<rung>`, `val_loss_std/<rung>`,
    `tokens_per_s/<rung>`, `seconds_to_target/<rung>`; then `improvement`, the first rung's loss minus the last's
    (positive: the last is better), and the same in σ."""
    seconds = next(k for k in rows[0] if k.startswith("s_to_"))
    keys = {}
    for row in rows:
        for name, column in (("val_loss", "val_loss"), ("val_loss_std", "val_loss_std"),
                             ("tokens_per_s", "tokens_per_s"), ("seconds_to_target", seconds)):
            keys[f"{name}/{row['rung']}{suffix}"] = row[column]
    total, sigmas = rows[-1][f"vs_{rows[0]['rung']}"], rows[-1][f"vs_{rows[0]['rung']}_sigmas"]
    keys[f"improvement{suffix}"] = -total if total is not None else None
    keys[f"improvement_sigmas{suffix}"] = -sigmas if sigmas is not None else None
    return keys


def markdown(rows: list[dict], rungs: list[Rung], target: float) -> str:
    """recipe.md: the table, how to read it, and what each trick is."""
    tricks = {r.name: r for r in rungs}
    return (markdown_table(rows) + "\n\n"
            "val_loss: the best validation loss, mean over the seeds (± their std); vs_<rung>: the change in nats "
            f"from that rung (negative: lower) and in σ, the pooled std of one seed of the two rungs; s_to_{target:g}: "
            f"seconds until the validation loss first reached {target:g} (interpolated between evaluations; empty: "
            "not every seed reached it).\n\n"
            + "".join(f"- **{r.name}** ({r.label}): {r.what}\n" for r in tricks.values()))


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
