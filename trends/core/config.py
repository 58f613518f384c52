"""Checks of a composed config before any data is read: keys that exist, values of the right kind, values that can
work. Each failure is a UserError of one line, so the CLI answers with exit code 2 and leaves no run folder."""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from trends.errors import UserError


def check_complete(cfg: DictConfig) -> None:
    """Every `???` value must be given on the command line."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"{', '.join(missing)} must be given, e.g. {missing[0]}=VALUE")


def check_override_types(cfg: DictConfig, config_name: str, overrides: list[str], choices: dict) -> None:
    """Compare each overridden value with the default of the same key (a number stays a number, and so on), and
    refuse appended keys (`+model.n_layers=6`) the config lacks: our configs are complete, so no code would read one."""
    from hydra import compose

    values = [o for o in overrides if "=" in o and not o.startswith(("hydra", "+", "~"))
              and o.split("=", 1)[0] not in choices and o.split("=", 1)[0] not in CHOICES]  # CHOICES: check_values
    appended = [o.lstrip("+").split("=", 1)[0] for o in overrides if o.startswith("+")]
    appended = [key for key in appended if key not in choices and not key.startswith("hydra")]
    if not values and not appended:
        return
    group_choices = [o for o in overrides if o.split("=", 1)[0] in choices]
    defaults = compose(config_name=config_name, overrides=group_choices)
    for key in appended:
        if key not in dotted_keys(defaults):
            raise UserError(unknown_key(key, defaults, config_name))
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


def dotted_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every key of `cfg` written as on the command line: `model`, `model.n_layer`, ... (lists are leaves)."""
    keys = []
    for name in cfg:
        key = f"{prefix}{name}"
        keys.append(key)
        value = cfg._get_node(name)  # the node, unresolved: reading cfg[name] would resolve ${now:...} and co.
        if isinstance(value, DictConfig):
            keys += dotted_keys(value, prefix=f"{key}.")
    return keys


def unknown_key(key: str, cfg: DictConfig, config_name: str) -> str:
    """One line naming the unknown key and the closest keys the demo has (never the advice to append it)."""
    command = f"trends {config_name.replace('_', '-')}"
    close = difflib.get_close_matches(key, [k for k in dotted_keys(cfg) if not k.startswith("hydra")], n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else f"`{command} --cfg` lists the keys"
    return f"{key} is not a key of {command}; {hint}"


@dataclass(frozen=True)
class Checks:
    """Values that cannot work, per dotted key. `ranges`: (fnmatch patterns, what the value must be, the test), so
    per-model maps like vit-vs-cnn's optim.lr.resnet are covered; keys a config lacks and null values (train.steps
    when epochs count) are skipped, lists are checked element by element. `divides`: (width, heads) pairs, since
    attention splits the width evenly over the heads. The core's own are SHARED; a demo declares the rest (the
    registry's `checks`), and `a + b` applies both."""
    ranges: tuple = ()
    divides: tuple = ()

    def __add__(self, other: Checks) -> Checks:
        return Checks(self.ranges + other.ranges, self.divides + other.divides)


def whole(low: int):
    """The test of a whole number ≥ low (1.0 counts: YAML and sweeps write numbers either way)."""
    return lambda v: v >= low and float(v).is_integer()


# The keys every demo shares.
SHARED = Checks(ranges=(
    (("optim.lr", "optim.lr.*"), "> 0", lambda v: v > 0),
    (("train.batch_size", "train.epochs", "train.steps"), "> 0", lambda v: v > 0),
    (("model.dropout", "model.*dropout", "model.*.dropout"), "in [0, 1)", lambda v: 0 <= v < 1),
))
# Keys that take one of a few values, words and flags mixed (checked here, not by the kind of their default:
# gnn's `train.amp: false` must still take `auto`).
CHOICES = {"train.amp": ("auto", True, False)}


def check_values(cfg: DictConfig, checks: Checks = SHARED) -> None:
    """Apply CHOICES and `checks` to a composed config; the first value that cannot work is a UserError."""
    keys = dotted_keys(cfg)
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if key in keys and not any(value is a if isinstance(a, bool) else value == a for a in allowed):  # 1 ≠ true
            words = [str(a).lower() for a in allowed]
            raise UserError(f"{key}={_show(value)} cannot work: {key} must be {', '.join(words[:-1])} or {words[-1]}")
    for patterns, must, test in checks.ranges:
        for key in [k for k in keys if any(fnmatch.fnmatchcase(k, p) for p in patterns)]:
            value = OmegaConf.select(cfg, key)
            items = list(value) if isinstance(value, ListConfig) else [value]
            if any(_is_number(v) and not test(v) for v in items):
                raise UserError(f"{key}={_show(value)} cannot work: {key} must be {must}")
    for width, heads in checks.divides:
        w, h = OmegaConf.select(cfg, width), OmegaConf.select(cfg, heads)
        if _is_number(w) and _is_number(h) and (h <= 0 or w % h):
            raise UserError(f"{width}={w} must be divisible by {heads}={h} (each head takes an equal share)")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
