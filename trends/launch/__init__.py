"""From a demo and its overrides to a Hydra run, below both entries (the `trends` command and `trends.run(...)`): the
demo registry, each demo's pre-launch hook, the checks before any folder exists, resume of a run or a sweep, the
torchrun rules, searches, and Hydra's run itself — one concern a module: registry, plan, compose, searches, folders,
start.

A single run's config is composed once, here, with Hydra's own node (as Hydra's `run` composes it), checked once, and
only then is its folder made; the job runs on that very config through hydra.core.utils.run_job, which writes .hydra/
and the job log as Hydra's `run` does. A sweep is Hydra's multirun: what its jobs share is composed and checked once
before the sweep folder, and each job checks its own config, so a bad swept value fails alone.

Bad input, whatever finds it, is a UserError of at most two lines, and the folder it would have used is gone. This
package imports no hydra, omegaconf or torch when it is imported (the CLI reads the registry for `trends --help`), and
no demo: a demo's hook and its value checks are named by import strings, imported when that demo launches.
"""
from .folders import discard_unused, new_run_dir, torchrun_rank
from .plan import Plan, analyse, before_launch, composed_yaml, prepare
from .registry import CONFIGS, DEMOS, Demo, config_files, demo_named
from .searches import search_resume_hint
from .start import failed_sweep_analysis, start

__all__ = ["CONFIGS", "DEMOS", "Demo", "Plan", "analyse", "before_launch", "composed_yaml", "config_files",
           "demo_named", "discard_unused", "failed_sweep_analysis", "new_run_dir", "prepare", "search_resume_hint",
           "start", "torchrun_rank"]
