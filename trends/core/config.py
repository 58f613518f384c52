"""Type checks for `key=value` overrides: Hydra rejects unknown keys, this rejects values of the wrong kind."""
from __future__ import annotations

from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import UserError


def check_complete(cfg: DictConfig) -> None:
    """Every `???` value must be given on the command line."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"{', '.join(missing)} must be given, e.g. {missing[0]}=VALUE")


def check_override_types(cfg: DictConfig, config_name: str, overrides: list[str], choices: dict) -> None:
    """Compare each overridden value with the default of the same key (a number stays a number, and so on)."""
    from hydra import compose

    values = [o for o in overrides if "=" in o and not o.startswith(("hydra", "+", "~"))
              and o.split("=", 1)[0] not in choices]
    if not values:
        return
    group_choices = [o for o in overrides if o.split("=", 1)[0] in choices]
    defaults = compose(config_name=config_name, overrides=group_choices)
    for override in values:
        key = override.split("=", 1)[0]
        default, given = OmegaConf.select(defaults, key), OmegaConf.select(cfg, key)
        expected = _kind(default)
        if expected == "a string" and not isinstance(given, (DictConfig, ListConfig)):
            continue  # `data.path=2024` parses as a number but is a fine name
        if expected is not None and given is not None and _kind(given) != expected:
            raise UserError(f"{override}: {key} must be {expected} (default: {_show(default)})")


def _kind(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, ListConfig)):
        return "a list like [a,b]"
    if isinstance(value, (dict, DictConfig)):
        return "a group of keys"
    return None


def _show(value) -> str:
    if isinstance(value, (DictConfig, ListConfig)):
        return str(OmegaConf.to_container(value))
    return repr(value)
