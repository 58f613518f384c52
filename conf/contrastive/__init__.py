"""Config groups of `trends contrastive` (found through hydra.searchpath in conf/contrastive.yaml)."""
