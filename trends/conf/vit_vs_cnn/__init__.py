"""Config groups of `trends vit-vs-cnn` (found through hydra.searchpath in trends/conf/vit_vs_cnn.yaml)."""
