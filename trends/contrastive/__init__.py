"""`trends contrastive`: SimCLR (data.py → augment.py → models.py → loss.py → train.py; evaluate.py measures)."""
