"""One rung of `trends recipe`: a default `trends lm` run (trends/text/training.py) with the tricks its rung file
names (trends/conf/recipe/rung/). The rung, its label and what it adds go into the job's summary, where the ladder's
table reads them (ladder.py): a finished sweep says what it ran, whatever the config says later."""
from __future__ import annotations

from omegaconf import DictConfig

from trends.records.run import Run
from trends.text.training import train_gpt


def main(cfg: DictConfig, run: Run) -> None:
    rung = cfg.ladder.rung
    trick = cfg.ladder.tricks.get(rung) or {}  # a new rung file not yet described in ladder.tricks: its name alone
    run.update(rung=rung, trick=trick.get("label", rung), trick_what=trick.get("what", ""))
    train_gpt(cfg, run)
