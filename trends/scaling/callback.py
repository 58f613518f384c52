"""The Hydra callback that analyses a `trends scaling` sweep once its last job has ended (named in
conf/scaling.yaml), so every launcher gets the analysis. Hydra instantiates it when the sweep starts, in the
launching process: the analysis and torch are imported only when it runs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from trends.core import layout
from trends.core.errors import UserError


class ScalingAnalysis(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from trends.core.run import write_json_atomic
        from trends.scaling.analysis import analyse

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            analyse(sweep_dir, config.scaling)
        except UserError as err:  # Hydra would only warn about an exception: record it, the CLI reports it
            write_json_atomic(sweep_dir / layout.SUMMARY, {"status": "failed", "command": "scaling",
                                                           "error": f"the analysis: {err}"})
