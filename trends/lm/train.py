"""`trends lm`: train one character-level GPT (trends/text/training.py), with the model, data and budget of the
config: trends/conf/lm.yaml and trends/conf/text/{model,data,optim}/."""
from __future__ import annotations

from omegaconf import DictConfig

from trends.records.run import Run
from trends.text.training import train_gpt


def main(cfg: DictConfig, run: Run) -> None:
    train_gpt(cfg, run)
