"""Config groups of `trends lm` (found through hydra.searchpath in conf/lm.yaml)."""
