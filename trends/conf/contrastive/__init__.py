"""Config groups of `trends contrastive` (found through hydra.searchpath in trends/conf/contrastive.yaml)."""
