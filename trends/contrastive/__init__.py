"""`trends contrastive`: SimCLR (data → augment → models → loss → train; evaluate.py measures what it learned)."""
