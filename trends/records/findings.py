"""A page's finding: one sentence with the headline, its baseline and the difference, the first thing a report says.

A demo knows its baseline and writes its own sentence into the summary (`finding`, and `lead_plot` for the figure
that shows it); the records know no demo, so for a sweep without one they say what the sweep table alone supports:
the best variant against the others, mean ± std over seeds. The number helpers are shared with the demos' sentences.
"""
from __future__ import annotations

import statistics

from .tables import fmt


def sig(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, trailing zeros kept (0.2031 → "0.203", 0.2 → "0.200", 22.13 →
    "22.1"); whole numbers at or above 10^digits with thousands separators."""
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:#.{digits}g}".rstrip(".")


def spread(values: list[float]) -> str:
    """"1.931 ± 0.013" over several values (mean ± sample std, the mean to the std's last digit), "1.931" for one."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    if not std:
        return fmt(mean) + (" ± 0" if len(values) > 1 else "")
    error = sig(std, 2)
    decimals = len(error.partition(".")[2])
    return f"{mean:.{decimals}f} ± {error}"


def difference(value: float, baseline: float, decimals: int | None = None) -> str:
    """"0.203 below" / "22.1 above": how far `value` lies from `baseline`, in the metric's own units, to `decimals`
    places (those the sentence gives the values with), else to 3 significant digits."""
    gap = abs(value - baseline)
    size = f"{gap:.{decimals}f}" if decimals is not None else f"{gap:.3g}"
    return f"{size} {'below' if value < baseline else 'above'}"


def pooled_std(first: list[float], second: list[float]) -> float | None:
    """The standard deviation of one seed, pooled over two groups of seeds (each group's variance weighted by its
    degrees of freedom): the yardstick a difference of their means is measured in σ by. None where the two groups
    have fewer than three values together, or no spread at all."""
    freedom = len(first) + len(second) - 2
    if freedom < 1:
        return None
    squares = sum((len(g) - 1) * statistics.variance(g) for g in (first, second) if len(g) > 1)
    return (squares / freedom) ** 0.5 or None


def count(n: float) -> str:
    """A count of parameters or images, short: 27392 → "27.4k", 10750000 → "10.8M"."""
    return next((f"{n / size:.3g}{unit}" for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)) if n >= size),
                f"{n:g}")


def above_chance(acc: float, classes: int) -> str:
    """"67.9 points above a uniform guess over its 7 classes (14.3 %)": an accuracy in % against chance."""
    chance = 100 / classes
    return f"{abs(acc - chance):.1f} points {'above' if acc >= chance else 'below'} a uniform guess over its " \
           f"{classes} classes ({chance:.1f} %)"


def as_sentence(text: str | None) -> str | None:
    """A finding as the page prints it: a capital first letter where the sentence opens with a word (not with an
    override or a metric's name, such as `model=gcn` or `test_acc`), and a full stop."""
    if not text or not text.strip():
        return None
    text = text.strip()
    first = text.split(" ", 1)[0]
    if first.isalpha():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def sweep_finding(variants: dict[str, list[float]], metric: str, lower: bool, jobs: int) -> str | None:
    """The sweep table in one sentence: the best variant's `metric` (mean ± std over its seeds) against the
    runner-up and the worst variant, or, with one variant, its spread over seeds. `variants`: label → the metric of
    each of its completed jobs; `jobs`: how many jobs the sweep has (completed or not)."""
    variants = {name: values for name, values in variants.items() if values}
    done = sum(len(v) for v in variants.values())
    if not done:
        return None
    missing = f"; {jobs - done} of {jobs} jobs did not complete" if done < jobs else ""
    if len(variants) == 1:
        (name, values), = variants.items()
        if len(values) == 1:
            return f"{metric} {fmt(values[0])} (one completed job){missing}"
        return (f"{metric} {spread(values)} over {len(values)} seeds, from {fmt(min(values))} to "
                f"{fmt(max(values))}" + ("" if name == "(defaults)" else f" ({name})") + missing)
    ranked = sorted(variants, key=lambda name: statistics.fmean(variants[name]), reverse=not lower)
    best, runner_up, worst = ranked[0], ranked[1], ranked[-1]
    mean = statistics.fmean(variants[best])
    seeds = len(variants[best])

    def against(name: str, role: str) -> str:
        return (f"{difference(mean, statistics.fmean(variants[name]))} {role}{_label(name)} "
                f"({spread(variants[name])})")

    comparisons = [against(runner_up, "the runner-up, " if len(ranked) > 2 else "")]
    if len(ranked) > 2:
        comparisons.append(against(worst, "the worst, "))
    return (f"{_label(best)} is the best of {len(ranked)} variants by {metric}: {spread(variants[best])}"
            + (f" over {seeds} seeds" if seeds > 1 else "") + " — " + ", and ".join(comparisons)
            + _within_noise(variants[best], variants[runner_up]) + missing)


def _label(name: str) -> str:
    return "the defaults" if name == "(defaults)" else name


def _within_noise(best: list[float], runner_up: list[float]) -> str:
    """Said where the lead over the runner-up is smaller than one standard deviation of the difference of a seed
    of each: the ranking could flip with other seeds."""
    if min(len(best), len(runner_up)) < 2:
        return ""
    noise = (statistics.variance(best) + statistics.variance(runner_up)) ** 0.5
    lead = abs(statistics.fmean(best) - statistics.fmean(runner_up))
    return "; the lead over the runner-up is within one standard deviation" if lead < noise else ""
