"""Arithmetic in configs, for sizes and rates that follow a rule: `n_embd: ${mul:${model.n_layer},32}` (width grows
with depth), `lr: ${div:0.64,${model.n_embd}}` (the learning rate falls as the width grows), and sweeps listed as
config values (`hydra.sweeper.params: {model.n_layer: ${sweep:${scaling.depths}}}`: [1,2,3] → "1,2,3", so a user
overrides the list as `scaling.depths=[2,4]`, not as a comma sweep of its own). Registered when `trends.core` is
imported, so every place a config is composed or loaded (the launch, every job in Hydra's launchers' own processes,
the demos, `trends sample`, the bench scripts) resolves them alike; not by `import trends`, which stays free of
omegaconf so that `trends --help` is instant."""
from __future__ import annotations

from omegaconf import OmegaConf

RESOLVERS = {
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "sweep": lambda values: ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values),  # 2e+12
}


def register() -> None:
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
