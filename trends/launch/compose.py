"""Composing a demo's config as Hydra's `run` does, checking it, and turning what Hydra or OmegaConf refuse into a
UserError of at most two lines."""
from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING

from trends.errors import UserError

from .registry import CONFIGS, Demo, imported

if TYPE_CHECKING:
    from omegaconf import DictConfig


@contextmanager
def hydra_session():
    """Hydra initialised on trends' configs, as `hydra.main(config_path="pkg://trends.conf")` initialises it; yields
    Hydra itself (hydra._internal.hydra.Hydra: its composition, its multirun)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    import trends.core  # noqa: F401 — registers the configs' resolvers (${mul:…})

    with initialize_config_module(config_module=CONFIGS, version_base="1.3"):
        yield GlobalHydra.instance().hydra


def compose_config(demo: Demo, overrides: list[str], *, configure_logging: bool = False) -> DictConfig:
    """The demo's config with these overrides and Hydra's own node, composed as Hydra's `run` composes it (inside
    hydra_session); `configure_logging` also sets up Hydra's own logging, as a run does."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with user_errors(demo, overrides):
        return GlobalHydra.instance().hydra.compose_config(demo.config, overrides, run_mode=RunMode.RUN,
                                                           with_log_configuration=configure_logging)


def job_part(cfg: DictConfig) -> DictConfig:
    """The config the job sees: a copy without Hydra's node."""
    from omegaconf import open_dict, read_write

    job = copy.deepcopy(cfg)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def check(demo: Demo, cfg: DictConfig) -> None:
    """Refuse a composed config (Hydra's node included) that cannot run: a `???` not given, an overridden value not
    of its default's kind or appended where the config has no key, a value the core or the demo cannot work with."""
    from trends.core.config import check_complete, check_override_types, check_values

    job = job_part(cfg)
    check_complete(job)
    check_override_types(job, demo.config, list(cfg.hydra.overrides.task), dict(cfg.hydra.runtime.choices))
    check_values(job, checks(demo))


def checks(demo: Demo):
    """The value checks of a demo's config: the core's shared ones and the demo's own."""
    from trends.core.config import SHARED

    return SHARED + imported(demo.checks) if demo.checks else SHARED


def settle(cfg: DictConfig, settings: list[str]) -> None:
    """Apply Hydra settings known only once the folder exists to a composed config, as Hydra applies them from the
    command line (hydra.yaml lists them among its overrides, as it would have)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(settings), cfg)
    cfg.hydra.overrides.hydra += settings


@contextmanager
def user_errors(demo: Demo, overrides: list[str]):
    """What Hydra or OmegaConf refuse, as a UserError in at most two lines (an unknown key with the closest keys)."""
    from hydra.errors import ConfigCompositionException, HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except (HydraException, OmegaConfBaseException) as err:
        unknown = re.match(r"Could not override '([^']+)'", str(err))
        if isinstance(err, ConfigCompositionException) and unknown:
            raise UserError(unknown_key_message(demo, unknown.group(1), overrides)) from err
        raise UserError(hydra_message(err)) from err


def hydra_message(err: Exception) -> str:
    """Hydra's own words, plus OmegaConf's reason, in at most two lines: no traceback, no config search path."""
    text = str(err).split("Config search path:")[0].strip()
    missing = re.match(r"In '[^']*': Could not (?:find|load) '(.+)/([^/']+)'\s+Available options in '[^']+':(.*)",
                       text, re.DOTALL)
    if missing:
        group, option, options = missing.groups()
        return f"{group}={option} is not an option; available options of {group}: {', '.join(options.split())}"
    cause = err.__cause__
    if cause is not None and str(cause).split("\n")[0] not in text:
        text += "\n" + str(cause).split("\n")[0]
    return "\n".join([line for line in text.splitlines() if line.strip()][:2])  # the rest only repeats or links


def unknown_key_message(demo: Demo, key: str, overrides: list[str]) -> str:
    """The message for a key Hydra could not override, with the closest keys of the config the user's group choices
    compose (the first value of a swept group stands for the sweep)."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from trends.core.config import unknown_key

    choices = compose(demo.config, return_hydra_config=True).hydra.runtime.choices
    groups = []
    for o in OverridesParser.create().parse_overrides([a for a in overrides if "=" in a]):
        if o.key_or_group in choices and not o.key_or_group.startswith("hydra"):
            value = next(o.sweep_string_iterator()) if o.is_sweep_override() else o.get_value_element_as_str()
            groups.append(f"{o.key_or_group}={value}")
    return unknown_key(key, compose(demo.config, overrides=groups), demo.config)


def fixed_overrides(args: list[str]) -> list[str]:
    """The overrides that are the same in every job of a sweep (`seed=0,1` and `range(…)` sweeps left out)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    fixed = []
    for arg in args:
        try:
            if not parser.parse_override(arg).is_sweep_override():
                fixed.append(arg)
        except HydraException:
            fixed.append(arg)  # unparsable: composing them says so in Hydra's terms
    return fixed
