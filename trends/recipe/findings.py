"""`trends recipe`'s finding, one sentence for the top of the sweep's report: the ladder's last rung against its first
(GPT-2's recipe) in nats and in σ, and when each reached the target loss; and one line per trick for the terminal."""
from __future__ import annotations

from trends.records.findings import difference


def ladder_finding(rows: list[dict], target: float, variant: str = "") -> str | None:
    """One ladder's rows (analysis.ladder_rows: the first rung is the baseline) in one sentence."""
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    where = f"at {variant}, " if variant else ""
    if last is first:
        return f"{where}{first['trick']} reaches a best validation loss of {_loss(first)} nats/char"
    sigmas = last[f"vs_{first['rung']}_sigmas"]
    seeds = f" (mean of {last['seeds']} seeds)" if last["seeds"] > 1 else ""
    return (f"{where}the ladder's last rung, {last['rung']} ({last['trick']}), ends at {_loss(last)} nats/char{seeds}, "
            f"{difference(last['val_loss'], first['val_loss'], 3)} its first, {first['rung']} ({_loss(first)}"
            + (f"; {abs(sigmas):.1f} σ" if sigmas is not None else "") + ")" + _times(first, last, target))


def _loss(row: dict) -> str:
    """"1.777 ± 0.004" over several seeds, "1.777" for one."""
    std = row["val_loss_std"]
    return f"{row['val_loss']:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def _times(first: dict, last: dict, target: float) -> str:
    """When the two rungs reached the target loss, as the end of the sentence."""
    key = f"s_to_{target:g}"
    early, late = first[key], last[key]
    if early is not None and late is not None:
        return f", and reaches {target:g} in {late:.0f} s against {early:.0f} s"
    if late is not None:
        return f", and reaches {target:g} in {late:.0f} s, which {first['rung']} does not"
    if early is not None:
        return f"; only {first['rung']} reaches {target:g} ({early:.0f} s)"
    return f"; neither reaches {target:g}"


def describe(rows: list[dict], tricks: dict[str, str]) -> list[str]:
    """Each trick's change from the rung before, with what it is and the literature's reason for it."""
    lines = []
    for row in rows[1:]:
        sigmas = row["vs_before_sigmas"]
        lines.append(f"{row['trick']}: {row['vs_before']:+.4f} nats" + (f" ({sigmas:+.1f} σ)" if sigmas is not None
                                                                        else "") + f" — {tricks.get(row['rung'], '')}")
    return lines
