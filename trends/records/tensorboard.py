"""logger=tensorboard: TensorBoard event files beside metrics.jsonl, through torch.utils.tensorboard. Every value a
run logs becomes the scalar `<split>/<metric>` at its step; when the run ends its overrides become hparams with its
metrics, so `tensorboard --logdir outputs/<demo>/multirun/<stamp>` compares a sweep's jobs in the HParams view."""
from __future__ import annotations

import math
from pathlib import Path

from trends.errors import UserError

FOLDER = "tensorboard"


class TensorBoard:
    def __init__(self, run_dir: Path, purge_step: int | None = None):
        self.check_installed()
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run rewrites the points after its checkpoint, as metrics.jsonl does.
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / FOLDER), purge_step=purge_step)

    @staticmethod
    def check_installed() -> None:
        try:
            import tensorboard  # noqa: F401 — torch.utils.tensorboard needs the package itself
        except ImportError:
            raise UserError("logger=tensorboard needs TensorBoard: pip install 'trends-lab[tensorboard]'") from None

    def scalars(self, step: int, split: str, values: dict) -> None:
        for name, value in values.items():
            if _number(value):
                self.writer.add_scalar(f"{split}/{name}", value, step)

    def hparams(self, overrides: list[str], metrics: dict) -> None:
        """The run's overrides (`key=value`, values as numbers where they are) against its final metrics."""
        params = {}
        for override in overrides:
            key, _, value = override.partition("=")
            if key and not key.startswith(("hydra", "+", "~")):
                params[key] = _parse(value)
        scores = {f"hparam/{k}": v for k, v in metrics.items() if _number(v)}
        if scores:
            self.writer.add_hparams(params or {"defaults": "true"}, scores, run_name=".")

    def close(self) -> None:
        self.writer.close()


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
