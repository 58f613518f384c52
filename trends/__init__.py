"""trends: one command per deep-learning trend, each a small self-contained demo on top of a shared core."""
from trends.core.resolvers import register as _register_config_resolvers

_register_config_resolvers()
