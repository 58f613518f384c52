"""The runtime: the loop, device, precision, distributed, checkpoints, schedule, seed, data.

It knows nothing of any demo; demos import it, never the other way round. Importing it registers the configs'
resolvers (resolvers.py): every process that composes, runs or reads back a config imports the core.
"""
from .resolvers import register as _register_config_resolvers

_register_config_resolvers()
