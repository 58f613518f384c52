"""`trends contrastive`: SimCLR (augment → models → loss → train; the pretraining loop and its evaluation are shared
with `trends pretext` in trends.vision.pretraining)."""
