"""A finished sweep of char-GPT runs, read back: one Rung per job folder (`<sweep>/<n>/`), from its summary.json,
its composed config (.hydra/config.yaml) and its metrics.jsonl. Works for `trends scaling`'s own sweeps and for any
`trends lm -m` sweep over sizes (`trends scaling --from`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from trends.errors import UserError
from trends.records import layout
from trends.records.findings import count
from trends.records.metrics import read_metrics
from trends.scaling.train import meta_model


@dataclass
class Rung:
    job: str
    n_layer: int
    n_embd: int
    params: int  # N: non-embedding parameters
    tokens: int  # training tokens
    flops: float  # training FLOPs: the model's FLOPs per token × tokens
    final_val_loss: float
    tokens_per_s: float
    lr: float
    budget: float | None  # mode=isoflop: the job's compute budget C
    curve: list = field(default_factory=list)  # (tokens, loss) at every evaluation (or every log point, see below)
    curve_split: str = "val"  # "step": the running training loss, where the run evaluated only at its end
    sample: str = ""

    @property
    def bits_per_char(self) -> float:
        return self.final_val_loss / math.log(2)

    @property
    def label(self) -> str:
        return f"{self.n_layer}×{self.n_embd} ({count(self.params)})"

    def row(self) -> dict:
        row = {"job": self.job, "n_layer": self.n_layer, "n_embd": self.n_embd, "params": self.params,
               "tokens": self.tokens, "flops": float(f"{self.flops:.4g}"), "final_val_loss": self.final_val_loss,
               "bits_per_char": round(self.bits_per_char, 4), "tokens_per_s": round(self.tokens_per_s), "lr": self.lr}
        return {**row, "budget": self.budget} if self.budget is not None else row


def load_rungs(sweep_dir: Path) -> tuple[list[Rung], list[str]]:
    """The completed char-GPT jobs of a sweep folder, smallest first, and one note per job left out; a UserError
    where none completed."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} {'is a file' if sweep_dir.exists() else 'does not exist'}; pass a sweep folder "
                        "such as outputs/lm/multirun/<stamp>")
    jobs = layout.job_folders(sweep_dir)
    if not jobs:
        raise UserError(f"{sweep_dir} is not a sweep folder (no job folders 0/, 1/, …); "
                        "pass the folder of a `trends lm -m …` or `trends scaling` sweep")
    rungs, skipped = [], []
    for job in jobs:
        summary = layout.read_summary(job)
        if not summary:
            skipped.append(f"job {job.name}: no summary.json")
            continue
        if summary.get("status") != "completed":
            reason = str(summary.get("error", "")).strip().splitlines()
            skipped.append(f"job {job.name}: {summary.get('status')}" + (f" ({reason[-1]})" if reason else ""))
            continue
        if summary.get("command") not in ("lm", "scaling"):
            raise UserError(f"{sweep_dir} is a `trends {summary.get('command')}` sweep; a scaling law needs "
                            "char-GPT runs of `trends lm -m …` or `trends scaling`")
        rungs.append(_rung(job, summary))
    if not rungs:
        raise UserError(f"no job of {sweep_dir} completed ({'; '.join(skipped)})")
    return sorted(rungs, key=lambda r: (r.budget or 0, r.params)), skipped


def _rung(job: Path, summary: dict) -> Rung:
    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    metrics = summary["metrics"]
    tokens = summary["total_steps"] * summary["tokens_per_step"]
    records = read_metrics(job)
    split = "val" if sum(r["split"] == "val" for r in records) >= 2 else "step"
    curve = [(r["step"] * summary["tokens_per_step"], r["loss"]) for r in records if r["split"] == split]
    sample = job / "samples.txt"
    model = meta_model(cfg.model, summary["vocab_size"])  # counted from the config: older lm runs did not record N
    return Rung(job=job.name, n_layer=int(cfg.model.n_layer), n_embd=int(cfg.model.n_embd),
                params=model.non_embedding_params(), tokens=tokens, flops=model.flops_per_token() * tokens,
                final_val_loss=metrics["final_val_loss"], tokens_per_s=metrics["tokens_per_s"],
                lr=float(summary.get("lr", cfg.optim.lr)), budget=OmegaConf.select(cfg, "scaling.budget"),
                curve=curve, curve_split=split, sample=sample.read_text() if sample.is_file() else "")
