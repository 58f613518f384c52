"""Config groups of `trends gnn` (found through hydra.searchpath in conf/gnn.yaml)."""
