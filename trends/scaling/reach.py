"""What "out of reach" means: a famous model's training compute (6·N·D), the time it would take on this machine at
the FLOP/s the ladder measured, the GPU-hours on a named accelerator at a stated utilisation, and the loss the fitted
law predicts for this corpus at that size: an extrapolation far outside the data."""
from __future__ import annotations

from dataclasses import dataclass

from trends.scaling.fit import PowerLaw

SECONDS_PER_YEAR = 365.25 * 24 * 3600
CHINCHILLA_TOKENS_PER_PARAM = 20


@dataclass(frozen=True)
class Famous:
    name: str
    params: float
    tokens: float
    flops: float
    years_here: float
    gpu_hours: float
    predicted_loss: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and v < 1e6 else v) for k, v in self.__dict__.items()}


def famous_models(models, law: PowerLaw, machine_flops: float, accelerator) -> list[Famous]:
    """models: [{name, params, tokens (null = Chinchilla's 20 per parameter)}]; machine_flops: FLOP/s measured here;
    accelerator: {name, peak_flops, utilization}."""
    out = []
    for m in models:
        tokens = m["tokens"] if m.get("tokens") is not None else CHINCHILLA_TOKENS_PER_PARAM * m["params"]
        flops = 6 * m["params"] * tokens
        out.append(Famous(name=m["name"], params=float(m["params"]), tokens=float(tokens), flops=flops,
                          years_here=flops / machine_flops / SECONDS_PER_YEAR,
                          gpu_hours=flops / (accelerator["peak_flops"] * accelerator["utilization"]) / 3600,
                          predicted_loss=float(law(m["params"]))))
    return out


def duration(years: float) -> str:
    """A span of time in the unit that reads best."""
    seconds = years * SECONDS_PER_YEAR
    for unit, size in (("years", SECONDS_PER_YEAR), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.3g} {unit}"
    return f"{seconds:.3g} s"
