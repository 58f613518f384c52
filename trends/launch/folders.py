"""Run and sweep folders: a new one per launch (one shared by every torchrun rank), the overrides a resumed one was
started with (read as data: nothing in a folder may select code), and the removal of one that bad input stopped
before anything was recorded."""
from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from trends.errors import UserError
from trends.ranks import Dist
from trends.records import layout, lock

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
    lock.refuse_if_held(sweep_dir)
    task = OmegaConf.select(saved, "hydra.overrides.task", default=[])
    return [o for o in as_data(task, sweep_dir / "multirun.yaml") if not o.startswith(("resume=", "hydra.job.name="))]


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
    lock.refuse_if_held(run_dir)
    return [o for o in as_data(OmegaConf.load(saved), saved) if not o.startswith("resume=")]


CODE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")  # what makes Hydra import and call


def as_data(overrides, source: Path) -> list[str]:
    """The overrides a folder recorded, each checked to be a demo's own setting: any entry for Hydra itself
    (`hydra.*`, `+hydra.*`, `++hydra.*`, `~hydra*`, `hydra/launcher=…`, `group@hydra.x=…`) or naming something to
    instantiate (`_target_`, …) is refused before Hydra starts. A trends run never records such an entry (Hydra keeps its own
    overrides apart), so finding one means the file was edited; `hydra.callbacks.x._target_=numpy.save` would
    otherwise make `--resume` call whatever the folder chose."""
    checked = []
    for entry in overrides:
        key = str(entry).split("=", 1)[0].lstrip("+~").strip()
        if not isinstance(entry, str) or "hydra" in key or any(k in entry for k in CODE_KEYS):
            raise UserError(f"{source} holds `{entry}`, which would change Hydra or run code, not set the demo; "
                            "a run folder is data: remove that line or start a new run")
        checked.append(entry)
    return checked


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


KEPT = (layout.SUMMARY, layout.METRICS, layout.CHECKPOINT.name)  # a run that began: never deleted by an error


def discard_unused(run_dir: Path | None) -> None:
    """Remove a new run or sweep folder that bad input stopped before any job began (no summary, metrics or
    checkpoint anywhere in it): nothing half-made stays, and nothing a run recorded is ever lost to an error."""
    if run_dir is not None and run_dir.is_dir() and not any(p.name in KEPT for p in run_dir.rglob("*")):
        shutil.rmtree(run_dir, ignore_errors=True)
        root = layout.outputs_root().resolve()
        for parent in run_dir.resolve().parents:  # the folders made for it go too, up to outputs/ itself
            if parent != root and root not in parent.parents:
                break
            try:
                parent.rmdir()  # fails while not empty: another run lives there
            except OSError:
                break
