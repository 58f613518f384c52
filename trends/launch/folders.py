"""Run and sweep folders: a new one per launch (one shared by every torchrun rank), the overrides a resumed one was
started with, and the removal of one that bad input stopped before anything was recorded."""
from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from trends.errors import UserError
from trends.ranks import Dist
from trends.records import layout

from .registry import Demo
from .searches import search_resume_hint


def is_sweep_folder(path: Path) -> bool:
    return (Path(path) / "multirun.yaml").is_file()


def sweep_resume_overrides(demo: Demo, sweep_dir: Path) -> list[str]:
    """The overrides a sweep was started with, so `--resume SWEEP` re-launches exactly its jobs (same numbers)."""
    from omegaconf import OmegaConf

    saved = OmegaConf.load(sweep_dir / "multirun.yaml")
    if OmegaConf.select(saved, "hydra.job.name") != demo.config:
        raise UserError(f"{sweep_dir} is not a `trends {demo.command}` sweep")
    search = search_resume_hint(sweep_dir)
    if search:
        raise UserError(f"{sweep_dir} is a search: {search}")
    return [o for o in OmegaConf.select(saved, "hydra.overrides.task", default=[])
            if not o.startswith(("resume=", "hydra.job.name="))]


def resume_overrides(demo: Demo, run_dir: Path) -> list[str]:
    """The overrides a run was started with, so `--resume` rebuilds exactly its config."""
    from omegaconf import OmegaConf

    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise UserError(f"{run_dir} is not a run folder (no .hydra/overrides.yaml); "
                        f"pass a folder under {layout.outputs_root() / demo.command}")
    hydra_cfg = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml")
    if OmegaConf.select(hydra_cfg, "hydra.job.name") != demo.config:
        raise UserError(f"{run_dir} is not a `trends {demo.command}` run")
    if not layout.checkpoint_of(run_dir).is_file():
        raise UserError(f"{run_dir} has no checkpoint to resume from ({layout.CHECKPOINT}); start a new run")
    return [o for o in OmegaConf.load(saved) if not o.startswith("resume=")]


def torchrun_rank() -> int | None:
    """This process's rank when torchrun started several (None for a plain single-process run)."""
    ranks = Dist.from_env()
    return ranks.rank if ranks.active else None


def new_run_dir(command: str, multirun: bool = False) -> Path:
    """`outputs/<command>[/multirun]/<timestamp>`, created here so two runs started in one second never share it.

    Under torchrun every rank must land in one folder: it is named after torchrun's run id instead.
    """
    base = layout.outputs_root() / command / ("multirun" if multirun else "")
    if torchrun_rank() is not None:
        if "TORCHELASTIC_RUN_ID" not in os.environ:
            raise UserError("several processes (WORLD_SIZE > 1) need one shared run folder: launch them with "
                            "torchrun --standalone --nproc-per-node=N -m trends ...")
        path = base / f"torchrun_{os.environ['TORCHELASTIC_RUN_ID']}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the run folder {path} ({err.strerror})") from None
        return path
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for attempt in range(1000):
        path = base / (stamp if attempt == 0 else f"{stamp}_{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise UserError(f"cannot create the run folder {path} ({err.strerror}); run from a writable folder "
                            "or set TRENDS_OUTPUTS to one") from None
    raise UserError(f"could not find a free run folder name under {base}")


def discard_unused(run_dir: Path | None) -> None:
    """Remove a run or sweep folder where no job got a summary (bad input stopped it): nothing half-written stays."""
    if run_dir is not None and run_dir.is_dir() and not any(run_dir.glob("**/summary.json")):
        shutil.rmtree(run_dir, ignore_errors=True)
        root = layout.outputs_root().resolve()
        for parent in run_dir.resolve().parents:  # the folders made for it go too, up to outputs/ itself
            if parent != root and root not in parent.parents:
                break
            try:
                parent.rmdir()  # fails while not empty: another run lives there
            except OSError:
                break
