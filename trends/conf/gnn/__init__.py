"""Config groups of `trends gnn` (found through hydra.searchpath in trends/conf/gnn.yaml)."""
